/**
 * The demo as a new user runs it: `npm run demo -- --keep` stays up (a few seconds later the
 * fleet is still there and the Consul UI answers), the commands it prints to copy work as printed
 * from another shell (status, a deploy of v3, history), Ctrl-C tears everything down; `--down`
 * cleans up after a demo that was killed outright.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TESTHOST_BASE } from "../harness/hosts.js";
import { ROOT } from "../harness/paths.js";
import { eventually } from "../helpers/specs.js";

const HOSTS = ["demo1", "demo2", "demo3"];
const nothingLeft = () =>
  HOSTS.every((h) => !existsSync(join(TESTHOST_BASE, h))) && !existsSync(join(TESTHOST_BASE, "demo.fleet.json"));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** scripts/demo.sh without its install and build steps (the suite has built dist/ already; a
 * rebuild here would rewrite the bundles under the feet of tests running beside this one) */
function startDemo(...args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "demo.ts"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: ROOT,
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  return { child, output: () => out, exit };
}

function run(cmd: string, args: string[], opts: SpawnOptions) {
  const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr })),
  );
}

describe("npm run demo -- --keep", () => {
  it("stays up until Ctrl-C, serves the Consul UI, then leaves nothing behind", async () => {
    const demo = startDemo("--keep");
    await eventually("the demo to reach --keep", async () => demo.output().includes("Keeping everything up"), 600_000);
    const ui = /Consul UI: (http:\/\/\S+\/ui\/)/.exec(demo.output())?.[1];
    expect(ui).toBeDefined();
    await new Promise((r) => setTimeout(r, 3000));
    expect(alive(demo.child.pid!)).toBe(true);
    for (const h of HOSTS) expect(existsSync(join(TESTHOST_BASE, h))).toBe(true);
    const page = await fetch(ui!);
    expect(page.status).toBe(200);
    // the block the demo printed to copy, run as printed in a new shell: status, a deploy of v3, history
    const text = demo.output();
    const block = /\n((?:.+\n)+)/.exec(text.slice(text.lastIndexOf("== Try it yourself")))?.[1] ?? "";
    expect(block).toMatch(/^cd .*\nexport CONSUL_HTTP_ADDR=http:\/\/127\.0\.0\.1:\d+\n(npx houston .*\n){3}$/);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CONSUL_")));
    const tried = await run("bash", ["-euxc", block], { env, cwd: "/" });
    expect(tried.code, tried.stderr).toBe(0);
    expect(tried.stdout).toMatch(/example: live: generation \d+, service example 2/); // status
    expect(tried.stderr).toMatch(/You're Go/); // the deploy of v3
    expect(tried.stdout).toMatch(/example[\s\S]*service example 3/); // history, every stack
    const state = JSON.parse(readFileSync(join(TESTHOST_BASE, "demo.fleet.json"), "utf8")) as { consulPids: number[] };
    demo.child.kill("SIGINT");
    expect(await demo.exit).toBe(0);
    expect(demo.output()).toContain("Demo complete: nothing left running");
    expect(demo.output()).not.toContain("\x1b"); // off a terminal: no escape codes, from the demo or the CLI
    expect(nothingLeft()).toBe(true);
    expect(state.consulPids.length).toBeGreaterThan(0);
    for (const pid of state.consulPids) expect(alive(pid)).toBe(false);
  }, 900_000); // waits on the demo's own steps (each says what it waits for), not on speed

  it("--down removes what a killed demo left", async () => {
    const demo = startDemo("--keep");
    await eventually("the demo's Consul server", async () => demo.output().includes("Consul server up"), 600_000);
    const state = JSON.parse(readFileSync(join(TESTHOST_BASE, "demo.fleet.json"), "utf8")) as { consulPids: number[] };
    demo.child.kill("SIGKILL");
    await demo.exit;
    expect(existsSync(join(TESTHOST_BASE, "demo1"))).toBe(true);
    const down = startDemo("--down");
    expect(await down.exit).toBe(0);
    expect(down.output()).toMatch(
      /Removed what a demo left: Consul server \(pid \d+\), test host demo1, test host demo2, test host demo3/,
    );
    expect(nothingLeft()).toBe(true);
    expect(state.consulPids.length).toBeGreaterThan(0);
    for (const pid of state.consulPids) expect(alive(pid)).toBe(false);
  }, 900_000);
});
