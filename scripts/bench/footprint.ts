/**
 * What the agent costs a host: the real bundle under the real native unit on a systemd test host
 * (the host's Node), idle RSS and peak, CPU while idle, bundle size, cold start; and the same
 * bundle on the runtime the image ships (Node 24 LTS, from scripts/build-image.sh's cache), with
 * the same flags, when that cache exists.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { LocalFleet } from "../../test/harness/local-fleet.js";
import { ROOT } from "../../test/harness/paths.js";

export interface Footprint {
  idleRssMb: number;
  peakRssMb: number;
  idleCpuSeconds: number;
  idleSeconds: number;
  bundleKb: number;
  coldStartMs: number;
  /** the image's runtime: same bundle and flags; null when its build cache is missing */
  imageRuntime: { node: string; idleRssMb: number; peakRssMb: number } | null;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function stat(fleet: LocalFleet, h: string) {
  const pid = (await fleet.shell(h, "systemctl", "show", "-p", "MainPID", "--value", "houston-agent.service")).trim();
  const st = await fleet.shell(h, "cat", `/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? "0");
  const ticks = (await fleet.shell(h, "cat", `/proc/${pid}/stat`)).split(" ");
  return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM"), cpuTicks: Number(ticks[13]) + Number(ticks[14]) };
}

async function healthy(fleet: LocalFleet, h: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ok = await fleet.shell(h, "curl", "-sf", "http://127.0.0.1:9631/health").then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the agent on ${h} did not become healthy`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The image's Node and its better-sqlite3 (scripts/build-image.sh's cache), or null. */
function imageRuntime(): { node: string; version: string; sqlite: string } | null {
  const cache = join(ROOT, ".state", "image");
  if (!existsSync(cache)) return null;
  for (const d of readdirSync(cache).filter((x) => /^node-\d/.test(x))) {
    const version = d.slice("node-".length);
    const sqlite = readdirSync(cache).find(
      (x) => x.startsWith("better-sqlite3-") && x.endsWith(`-node${version}-small`),
    );
    // build-image.sh moves a finished build into place whole; an older cache may lack the module
    if (
      sqlite &&
      existsSync(join(cache, d, "bin", "node")) &&
      existsSync(join(cache, sqlite, "build", "Release", "better_sqlite3.node"))
    )
      return { node: join(cache, d, "bin", "node"), version, sqlite: join(cache, sqlite) };
  }
  return null;
}

export async function footprint(fleet: LocalFleet, idleSeconds: number, coldRuns: number): Promise<Footprint> {
  const host = fleet.hosts[0]!;
  const h = host.name;
  const a = await stat(fleet, h);
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const b = await stat(fleet, h);
  const hz = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  const bundle = statSync(join(ROOT, "dist", "houston-agent.js")).size;
  // the unit's Node flags (some cost start time: no startup snapshot)
  const unit = readFileSync(join(ROOT, "systemd", "houston-agent.service"), "utf8");
  const exec = /^ExecStart=\S+ (.*) \/opt\/houston\/houston-agent\.js$/m.exec(unit)?.[1] ?? "";
  const cold: number[] = [];
  for (let i = 0; i < coldRuns; i++) {
    const t0 = performance.now();
    // stderr piped: lite mode's notice about wasm is not the benchmark's output
    execFileSync(
      process.execPath,
      [...exec.split(" ").filter(Boolean), join(ROOT, "dist", "houston-agent.js"), "--version"],
      { stdio: "pipe" },
    );
    cold.push(performance.now() - t0);
  }
  let image: Footprint["imageRuntime"] = null;
  const rt = imageRuntime();
  if (rt) {
    // the same unit and flags, another Node: a drop-in replaces ExecStart's interpreter only
    const opt = join(host.root, "opt", "houston-image-node");
    mkdirSync(join(opt, "node_modules", "better-sqlite3", "build", "Release"), { recursive: true });
    copyFileSync(rt.node, join(opt, "node"));
    chmodSync(join(opt, "node"), 0o755);
    cpSync(join(rt.sqlite, "lib"), join(opt, "node_modules", "better-sqlite3", "lib"), { recursive: true });
    copyFileSync(join(rt.sqlite, "package.json"), join(opt, "node_modules", "better-sqlite3", "package.json"));
    copyFileSync(
      join(rt.sqlite, "build", "Release", "better_sqlite3.node"),
      join(opt, "node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node"),
    );
    for (const m of ["bindings", "file-uri-to-path"])
      cpSync(join(ROOT, "node_modules", m), join(opt, "node_modules", m), { recursive: true });
    copyFileSync(join(ROOT, "dist", "houston-agent.js"), join(opt, "houston-agent.js"));
    copyFileSync(join(ROOT, "dist", "package.json"), join(opt, "package.json"));
    const dropIn = join(host.root, "etc", "systemd", "system", "houston-agent.service.d");
    mkdirSync(dropIn, { recursive: true });
    writeFileSync(
      join(dropIn, "image-node.conf"),
      `[Service]\nExecStart=\nExecStart=/opt/houston-image-node/node ${exec} /opt/houston-image-node/houston-agent.js\n`,
    );
    await fleet.shell(h, "systemctl", "daemon-reload");
    await fleet.shell(h, "systemctl", "restart", "houston-agent.service");
    await healthy(fleet, h);
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const c = await stat(fleet, h);
    image = { node: rt.version, idleRssMb: c.rssKb / 1024, peakRssMb: c.hwmKb / 1024 };
    rmSync(dropIn, { recursive: true, force: true });
    await fleet.shell(h, "systemctl", "daemon-reload");
    await fleet.shell(h, "systemctl", "restart", "houston-agent.service");
    await healthy(fleet, h);
  }
  return {
    idleRssMb: b.rssKb / 1024,
    peakRssMb: b.hwmKb / 1024,
    idleCpuSeconds: (b.cpuTicks - a.cpuTicks) / hz,
    idleSeconds,
    bundleKb: bundle / 1024,
    coldStartMs: median(cold),
    imageRuntime: image,
  };
}
