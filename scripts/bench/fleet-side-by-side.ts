/**
 * The fleet section of `npm run bench`: the REAL original Houston 0.3.0 (../shared/original-houston,
 * built by its install.sh) against Houston scheduling through fleet, on one cluster of three real
 * systemd hosts running the real fleetd v1.0.0 (LocalFleet with `fleetd`), with the original's own
 * config dir (example-stack/: a global unit, then `shop` with two dependencies and a file archive
 * on the two web hosts). Each tool gets the same temp copy, its consul/fleet endpoints set to the
 * cluster's. Per run: global, first deploy of shop, upgrade of shop (wall time of the command at
 * its defaults); then everything is taken down, so that the next run deploys from nothing again.
 * After each command (outside its time) the bench checks the cluster itself and records what it
 * found, so that a figure is never for less than it claims.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Fleet } from "../../shared/fleet.js";
import { fleetdAvailable } from "../../test/harness/fleetd.js";
import { LocalFleet } from "../../test/harness/local-fleet.js";
import { ROOT } from "../../test/harness/paths.js";
import { makeReadyAware } from "./ready-aware-original.js";

export const ORIGINAL = join(ROOT, "..", "shared", "original-houston");

export interface ToolFigures {
  globalMs: number[];
  firstMs: number[];
  upgradeMs: number[];
  /** what the tool itself waits for before it says it succeeded (from its code) */
  confirms: { global: string; first: string; upgrade: string };
}

/** when Houston printed "You're Go", per command */
export interface Go {
  globalMs: number[];
  firstMs: number[];
  upgradeMs: number[];
}

export interface FleetSideBySide {
  original: ToolFigures;
  houston: ToolFigures;
  /** when Houston printed "You're Go" (the new version confirmed; the old one's removal is confirmed after) */
  houstonGo: Go;
  /** Houston with --min-healthy 0: no watch window, the original's level of confirmation after
   * active (a breakdown of where the difference lies, not a result; null in smoke runs) */
  noWindow: { exit: ToolFigures; go: Go } | null;
  /** Houston at its defaults with the original's units made ready-aware (ready-aware-original.ts):
   * what readiness buys, confirming as much as the default row (null in smoke runs) */
  ready: { exit: ToolFigures; go: Go } | null;
  /** what the bench found on the cluster after every command (checked outside the timings) */
  checkedAfter: { global: string; first: string; upgrade: string };
}

let began = Date.now();
const say = (m: string) =>
  process.stderr.write(`${m} (${((Date.now() - began) / 1000).toFixed(0)} s into the section)\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The original's config dir with the cluster's endpoints; `noFileSleep`: smoke runs only. */
function stackDir(consul: string, fleet: string, noFileSleep: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-original-stack-"));
  cpSync(join(ORIGINAL, "example-stack"), dir, { recursive: true });
  const manifest = join(dir, "manifest.yaml");
  writeFileSync(
    manifest,
    readFileSync(manifest, "utf8")
      .replace(/^(\s+consul:\s*)\S+/m, `$1${consul}`)
      .replace(/^(\s+fleet:\s*)\S+/m, `$1${fleet}`),
  );
  // the original reads file-unit.template from the config dir: its own, without the sleep 30
  if (noFileSleep)
    writeFileSync(
      join(dir, "file-unit.template"),
      `[Unit]\nDescription=Houston File Archive Deployment\n\n[Service]\nType=oneshot\nRemainAfterExit=true\nExecStart=/usr/bin/bash -c 'curl -s "http://localhost:8500/v1/kv/{archive_key}?raw" | base64 -d | tar -C / -xvf -'\n\n[X-Fleet]\nGlobal=true\n`,
    );
  return dir;
}

/** Runs a command; its wall time, and when it printed a line matching `announce` (ms from its start). */
function timed(
  cmd: string,
  args: string[],
  what: string,
  announce: RegExp | null = null,
): Promise<{ ms: number; announcedMs: number | null }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let announcedMs: number | null = null;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (announcedMs === null && announce?.test(stderr)) announcedMs = Date.now() - t0;
    });
    child.on("close", (code) => {
      const ms = Date.now() - t0;
      if (code !== 0) reject(new Error(`${what} failed (exit ${code}): ${stderr.slice(-3000)}`));
      else resolve({ ms, announcedMs });
    });
  });
}

/** The checks made after each command, on the cluster itself. */
class Checks {
  constructor(
    private readonly lf: LocalFleet,
    private readonly api: Fleet,
    private readonly web: string[],
  ) {}

  /** each host's ActiveState of `unit` */
  private async states(hosts: string[], unit: string): Promise<string[]> {
    return Promise.all(hosts.map((h) => this.lf.unitState(h, unit)));
  }

  async global(): Promise<void> {
    const all = this.lf.hosts.map((h) => h.name);
    const st = await this.states(all, "beacon@1.service");
    if (st.some((s) => s !== "active")) throw new Error(`beacon@1.service after global: ${st.join(", ")}`);
  }

  /** shop@V active on both web hosts with its dependencies and files, in Consul's catalog with tag V at each host's address */
  async deployed(version: string): Promise<void> {
    for (const u of [`shop@${version}.service`, "shop-cache@1.4.service", "shop-queue@2.0.service"]) {
      const st = await this.states(this.web, u);
      if (st.some((s) => s !== "active")) throw new Error(`${u} after shop ${version}: ${st.join(", ")}`);
    }
    const { entries } = await this.lf.consul.healthService("shop");
    for (const h of this.web) {
      const ip = this.lf.host(h).ip;
      if (
        !entries.some((e) => e.Node.Node === h && (e.Service.Tags ?? []).includes(version) && e.Service.Address === ip)
      )
        throw new Error(`shop ${version} is not in Consul's catalog at ${h} (${ip}) after the deploy`);
      const env = await this.lf.shell(h, "cat", "/etc/shop/shop.env");
      if (!env.includes("SHOP_ENVIRONMENT=lab")) throw new Error(`/etc/shop/shop.env on ${h}: ${env}`);
    }
  }

  /** the old version: gone from fleet and from every host's systemd and Consul (waited for: fleet may lag) */
  async oldGone(version: string, immediately: boolean): Promise<{ leftInFleet: boolean; leftOnHosts: boolean }> {
    const unit = `shop@${version}.service`;
    const look = async () => ({
      leftInFleet: (await this.api.units()).some((u) => u.name === unit),
      leftOnHosts: (await this.states(this.web, unit)).some((s) => s === "active" || s === "deactivating"),
    });
    const first = await look();
    if (immediately) return first;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
      const now = await look();
      if (!now.leftInFleet && !now.leftOnHosts) return now;
    }
    throw new Error(`${unit} still runs 60 s after the upgrade`);
  }
}

/** Destroys every unit in fleet and waits until the hosts run none of them and fleet's /state is
 * empty; removes the original's leftovers. */
async function clearCluster(lf: LocalFleet, api: Fleet, web: string[]): Promise<void> {
  for (const u of await api.units()) await api.destroyUnit(u.name);
  const ours = ["beacon@", "shop"];
  for (const deadline = Date.now() + 120_000; ; await sleep(300)) {
    const running = (
      await Promise.all(
        lf.hosts.map((h) =>
          lf.shell(
            h.name,
            "sh",
            "-c",
            "systemctl list-units --no-legend --plain --state=active,activating,deactivating",
          ),
        ),
      )
    )
      .join("\n")
      .split("\n")
      .filter((l) => ours.some((p) => l.startsWith(p)));
    // fleet's /state keeps a destroyed unit for a few seconds: the original would take it as running
    if (running.length === 0 && (await api.units()).length === 0 && (await api.states()).length === 0) break;
    if (Date.now() > deadline) throw new Error(`fleet did not clear the cluster in 120 s: ${running.join("; ")}`);
  }
  // the original's archives in KV and the files its file unit wrote (Houston refuses to overwrite those)
  for (const k of await lf.consul.kvKeys("houston/"))
    if (k.startsWith("houston/shop-file-deploy@")) await lf.consul.kvDelete(k);
  await Promise.all(web.map((h) => lf.shell(h, "rm", "-rf", "/usr/local/lib/shop", "/etc/shop")));
}

/**
 * Boots the cluster (hosts `${prefix}1..3`), runs both tools `runs` times and takes it down.
 * `smoke`: the original at --delay 1 without its sleep 30, so that the suite's smoke run is short.
 */
export async function fleetSideBySide(prefix: string, runs: number, smoke: boolean): Promise<FleetSideBySide | null> {
  began = Date.now();
  if (!fleetdAvailable()) {
    say("fleet section SKIPPED: no real fleet in .fleet/bin (scripts/install-fleet.sh installs it)");
    return null;
  }
  const venv = join(tmpdir(), "original-houston-0.3.0");
  if (!existsSync(join(venv, "bin", "houston")))
    execFileSync(join(ORIGINAL, "install.sh"), [venv], { stdio: "ignore" });
  const lf = await LocalFleet.start({
    hosts: [
      // service=shop: the original's file unit runs on MachineMetadata=service=<name>
      { name: `${prefix}1`, meta: { role: "web", service: "shop" } },
      { name: `${prefix}2`, meta: { role: "web", service: "shop" } },
      { name: `${prefix}3`, meta: { role: "worker" } },
    ],
    fleetd: true,
  });
  const web = [`${prefix}1`, `${prefix}2`];
  const api = new Fleet(lf.fleetEndpoint);
  const checks = new Checks(lf, api, web);
  const dir = stackDir(lf.consulAddr, lf.fleetEndpoint, smoke);
  const readyDir = stackDir(lf.consulAddr, lf.fleetEndpoint, smoke);
  makeReadyAware(readyDir);
  const delay = smoke ? ["-d", "1"] : [];
  const original = async (...args: string[]) =>
    (
      await timed(
        join(venv, "bin", "houston"),
        ["-c", dir, "-e", "lab", ...delay, ...args],
        `original houston ${args.join(" ")}`,
      )
    ).ms;
  const houstonRun = (config: string, ...args: string[]) =>
    timed(
      process.execPath,
      [join(ROOT, "dist", "houston.js"), "-c", config, "-e", "lab", "--consul", lf.consulAddr, ...args],
      `houston ${args.join(" ")}`,
      /You're Go/,
    );
  /** global, first deploy, upgrade of shop, each checked; then Houston removes both and the cluster is cleared */
  const houstonPass = async (f: ToolFigures, go: Go, extra: string[], config = dir) => {
    const deploy = async (into: number[], gos: number[], ...args: string[]) => {
      const r = await houstonRun(config, ...extra, ...args);
      into.push(r.ms);
      gos.push(r.announcedMs ?? r.ms);
    };
    await deploy(f.globalMs, go.globalMs, "global");
    await checks.global();
    await deploy(f.firstMs, go.firstMs, "service", "shop", "1");
    await checks.deployed("1");
    await deploy(f.upgradeMs, go.upgradeMs, "service", "shop", "2");
    const gone = await checks.oldGone("1", true);
    if (gone.leftInFleet || gone.leftOnHosts) throw new Error("houston returned with shop@1 still in fleet or running");
    await checks.deployed("2");
    await houstonRun(config, "remove", "shop");
    await houstonRun(config, "remove", "global");
    await clearCluster(lf, api, web);
  };
  const o: ToolFigures = {
    globalMs: [],
    firstMs: [],
    upgradeMs: [],
    confirms: {
      global: "fleet's /state: beacon@1 active on every machine",
      first:
        "fleet's /state: each unit active on every machine it runs on (looked at every --delay); Consul's catalog lists shop with tag 1 at each machine's address (one look, no health check)",
      upgrade:
        "the same for shop@2; shop@1's destruction requested from fleet, not waited for (it ran on after the command returned in N of M runs)",
    },
  };
  const h: ToolFigures = {
    globalMs: [],
    firstMs: [],
    upgradeMs: [],
    confirms: {
      global: "every agent: beacon@1 active on every host, watched for its window",
      first:
        "every unit active on every host it was placed on (the agents' reports), shop registered in Consul with tag 1 on every host and passing, watched for its window",
      upgrade:
        "the same for shop@2, then You're Go; then, before the command returns, shop@1 destroyed in fleet and stopped on every host (the agents' reports)",
    },
  };
  const go: Go = { globalMs: [], firstMs: [], upgradeMs: [] };
  const nw: ToolFigures = {
    globalMs: [],
    firstMs: [],
    upgradeMs: [],
    confirms: { ...h.confirms, global: h.confirms.global.replace(", watched for its window", "") },
  };
  nw.confirms.first = nw.confirms.first.replace(", watched for its window", "");
  const nwGo: Go = { globalMs: [], firstMs: [], upgradeMs: [] };
  const rd: ToolFigures = {
    globalMs: [],
    firstMs: [],
    upgradeMs: [],
    confirms: {
      global: h.confirms.global.replace("watched for its window", "proved ready (READY=1)"),
      first: h.confirms.first.replace("watched for its window", "every unit proved ready (READY=1)"),
      upgrade: h.confirms.upgrade,
    },
  };
  const rdGo: Go = { globalMs: [], firstMs: [], upgradeMs: [] };
  let oldLeft = 0;
  try {
    for (let r = 0; r < runs; r++) {
      say(`  fleet run ${r + 1}/${runs}: the original Houston 0.3.0`);
      o.globalMs.push(await original("global"));
      await checks.global();
      o.firstMs.push(await original("service", "shop", "1"));
      await checks.deployed("1");
      o.upgradeMs.push(await original("service", "shop", "2"));
      const left = await checks.oldGone("1", true);
      if (left.leftInFleet || left.leftOnHosts) oldLeft++;
      await checks.deployed("2");
      await checks.oldGone("1", false);
      await clearCluster(lf, api, web);
      say(`  fleet run ${r + 1}/${runs}: Houston through fleet`);
      await houstonPass(h, go, []);
      if (!smoke) {
        say(`  fleet run ${r + 1}/${runs}: Houston through fleet, --min-healthy 0 (a breakdown, not a result)`);
        await houstonPass(nw, nwGo, ["--min-healthy", "0"]);
        say(`  fleet run ${r + 1}/${runs}: Houston through fleet, the original's units made ready-aware`);
        await houstonPass(rd, rdGo, [], readyDir);
      }
    }
  } finally {
    await lf.stop();
  }
  o.confirms.upgrade = o.confirms.upgrade.replace("N of M", `${oldLeft} of ${runs}`);
  return {
    original: o,
    houston: h,
    houstonGo: go,
    noWindow: smoke ? null : { exit: nw, go: nwGo },
    ready: smoke ? null : { exit: rd, go: rdGo },
    checkedAfter: {
      global: "beacon@1 active on all 3 hosts",
      first:
        "shop@1, shop-cache@1.4, shop-queue@2.0 active on both web hosts; shop in Consul's catalog with tag 1 at each host's address; /etc/shop/shop.env written",
      upgrade: "the same for shop@2; shop@1 gone from fleet and from both hosts' systemd (waited for, up to 60 s)",
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Runs the side by side and prints its table and what each figure confirms; the JSON is its return. */
export async function fleetSection(
  prefix: string,
  runs: number,
  smoke: boolean,
  print: (m: string) => void,
): Promise<Record<string, unknown> | null> {
  const r = await fleetSideBySide(prefix, runs, smoke);
  if (!r) return null;
  const row = (label: string, o: number[], h: number[]) => {
    const [om, hm] = [median(o), median(h)];
    print(
      `  ${label.padEnd(24)}${sec(om).padStart(12)}${sec(hm).padStart(12)}${`${(om / Math.max(1, hm)).toFixed(2)}×`.padStart(12)}   (runs: original ${o.map(sec).join(", ")}; houston ${h.map(sec).join(", ")})`,
    );
    return { originalMs: om, houstonMs: hm, ratio: om / Math.max(1, hm), originalRunsMs: o, houstonRunsMs: h };
  };
  print(
    `\nThrough a real fleet v1.0.0 (3 hosts): the original Houston 0.3.0${smoke ? " (smoke: -d 1, no sleep 30)" : " at its defaults"} vs Houston, the original's config dir, medians of ${runs}:`,
  );
  print(
    `  ${"".padEnd(24)}${"original".padStart(12)}${"houston".padStart(12)}${"orig/ours".padStart(12)}   (houston: to its exit; "Go": to its "You're Go")`,
  );
  const out = {
    global: row("global", r.original.globalMs, r.houston.globalMs),
    first: row("first deploy", r.original.firstMs, r.houston.firstMs),
    upgrade: row("upgrade", r.original.upgradeMs, r.houston.upgradeMs),
    // Houston's "You're Go" (the new version confirmed): the old version's removal is confirmed after it
    toGo: {
      global: row("global, Go", r.original.globalMs, r.houstonGo.globalMs),
      first: row("first, Go", r.original.firstMs, r.houstonGo.firstMs),
      upgrade: row("upgrade, Go", r.original.upgradeMs, r.houstonGo.upgradeMs),
    },
    ready: r.ready && {
      global: row("global, ready-aware", r.original.globalMs, r.ready.go.globalMs),
      first: row("first, ready-aware", r.original.firstMs, r.ready.go.firstMs),
      upgrade: row("upgrade, ready-aware", r.original.upgradeMs, r.ready.go.upgradeMs),
      upgradeExit: row("upgrade, ready, exit", r.original.upgradeMs, r.ready.exit.upgradeMs),
    },
    noWindow: r.noWindow && {
      global: row("global, Go, no window", r.original.globalMs, r.noWindow.go.globalMs),
      first: row("first, Go, no window", r.original.firstMs, r.noWindow.go.firstMs),
      upgrade: row("upgrade, Go, no window", r.original.upgradeMs, r.noWindow.go.upgradeMs),
      upgradeExit: row("upgrade, no window", r.original.upgradeMs, r.noWindow.exit.upgradeMs),
    },
    confirms: { original: r.original.confirms, houston: r.houston.confirms },
    checkedAfter: r.checkedAfter,
  };
  for (const [who, c] of [
    ["original", r.original.confirms],
    ["houston", r.houston.confirms],
    ...(r.ready ? ([["houston, ready-aware units", r.ready.exit.confirms]] as const) : []),
    ...(r.noWindow ? ([['houston --min-healthy 0 ("no window")', r.noWindow.exit.confirms]] as const) : []),
  ] as const)
    print(`  ${who} confirms before it returns: global: ${c.global}; first: ${c.first}; upgrade: ${c.upgrade}`);
  print(
    `  checked on the cluster after each command: global: ${r.checkedAfter.global}; first: ${r.checkedAfter.first}; upgrade: ${r.checkedAfter.upgrade}`,
  );
  return out;
}
