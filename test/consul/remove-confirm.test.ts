/**
 * `houston remove STACK` on a terminal (a pseudo-terminal from util-linux `script`) asks first,
 * naming each unit that stops and the hosts that report it; "n" leaves the stack as it is, `-y`
 * does not ask. Off a terminal it does not ask (scripts keep working). No agent answers here, so a
 * removal that went on is interrupted once it has written its first generation: Ctrl-C, SIGINT and
 * SIGHUP alike leave an `interrupted` history row and a free lock.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { putReport } from "../../shared/stores/reports.js";
import { readSpec } from "../../shared/stores/specs.js";
import { whatStops } from "../../controller/commands/confirm-remove.js";
import { DeployLock } from "../../controller/rollout/lock.js";
import { configDir, houston, startCli } from "../helpers/cli.js";
import { dep, eventually, planUnits, publish, statusReport, unitText } from "../helpers/specs.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";
import { ROOT } from "../harness/paths.js";

let consul: TestConsul;
let c: Consul;
const kv = new KvLayout("houston/");
const dir = configDir({ "manifest.yaml": "environments:\n  test: {}\n" });
const units = new Map<string, string>();

/** A stack with one unit that hosts h1 and h2 report active. */
async function deployed(stack: string): Promise<string> {
  const planned = await planUnits(c, kv, stack, [dep("app", "1", unitText("ExecStart=/bin/sleep infinity"))]);
  await publish(c, kv, stack, planned);
  for (const node of ["h2", "h1"])
    await putReport(
      c,
      kv,
      node,
      statusReport(node, stack, { units: [{ name: planned[0]!.name, activeState: "active", subState: "running" }] }),
    );
  return planned[0]!.name;
}

beforeAll(async () => {
  consul = await startConsul();
  c = new Consul({ addr: consul.addr, token: "" });
  for (const stack of ["web", "yes", "script", "hup"]) units.set(stack, await deployed(stack));
});
afterAll(async () => consul?.stop());

/** The CLI on a pseudo-terminal; `answer` is typed when it asks, `type` sends keys meanwhile. */
function onTerminal(args: string[], answer: string) {
  const cli = [
    process.execPath,
    join(ROOT, "dist", "houston.js"),
    "-c",
    dir,
    "-e",
    "test",
    "--consul",
    consul.addr,
    ...args,
  ];
  const child = spawn("script", ["-qec", cli.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" "), "/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let text = "";
  let answered = false;
  // the terminal may be gone by the time a late chunk arrives: a write then fails with EPIPE
  child.stdin.on("error", () => undefined);
  child.stdout.on("data", (d: Buffer) => {
    text += d.toString();
    if (!answered && text.includes("[y/N]")) {
      answered = true;
      child.stdin.write(answer);
    }
  });
  child.stderr.on("data", (d: Buffer) => (text += d.toString()));
  const done = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  return { type: (keys: string) => child.stdin.write(keys), text: () => text, done };
}

/** Waits until the removal has written its first generation (the stack's spec moved on). */
const removalUnderWay = (stack: string) =>
  eventually(`the removal of ${stack} to start`, async () => (await readSpec(c, kv, stack)).spec?.generation !== 1);

describe("remove asks on a terminal", () => {
  it("names the units and hosts that stop; 'n' removes nothing", async () => {
    const t = onTerminal(["remove", "web"], "n\n");
    expect(await t.done).toBe(1);
    expect(t.text()).toMatch(/Removing web \(generation 1\) stops:\r?\n +\S+ on h1, h2\r?\n/);
    expect(t.text()).toContain(units.get("web"));
    expect(t.text()).toMatch(/Not removed: web keeps running/);
    expect((await readSpec(c, kv, "web")).spec?.generation).toBe(1);
  });

  it("-y does not ask (and Ctrl-C on the terminal then interrupts the removal)", async () => {
    const t = onTerminal(["remove", "yes", "-y"], "n\n");
    await removalUnderWay("yes");
    t.type("\x03");
    expect(await t.done).toBe(130);
    expect(t.text()).not.toContain("[y/N]");
  });

  it("off a terminal it does not ask; the interrupted removal leaves a history row", async () => {
    const cli = startCli(consul.addr, dir, ["remove", "script"]);
    await removalUnderWay("script");
    cli.child.kill("SIGINT");
    const r = await cli.done;
    expect(r.code).toBe(130);
    expect(r.stderr).not.toContain("[y/N]");
    expect(r.stderr).toContain("INFO     Removing script without asking: no terminal to ask on");
    const h = await houston(consul.addr, dir, "history", "script");
    expect(h.stdout).toMatch(/\n\d+(→\d+)? +interrupted /);
  });

  it("SIGHUP (the terminal closed) is handled like Ctrl-C: the lock is free at once", async () => {
    const cli = startCli(consul.addr, dir, ["remove", "hup"]);
    await removalUnderWay("hup");
    cli.child.kill("SIGHUP");
    const r = await cli.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/Interrupted during the removal of hup; released the deploy lock of hup\./);
    const lock = await DeployLock.acquire(c, kv, "hup", "test"); // throws while another holds it
    await lock.release();
    expect((await houston(consul.addr, dir, "history", "hup")).stdout).toMatch(/ interrupted /);
  });
});

describe("whatStops (pure)", () => {
  const spec = {
    units: [
      { name: "a@1.service", group: null },
      { name: "a:blue@1.service", group: "blue" },
    ],
  } as never;
  const report = (node: string, names: string[], state = "active") =>
    [node, { node, units: names.map((name) => ({ name, activeState: state, subState: "" })) }] as const;
  it("lists each unit with the hosts that report it, sorted", () =>
    expect(
      whatStops(spec, null, new Map([report("z", ["a@1.service"]), report("b", ["a@1.service"])]) as never),
    ).toEqual(["  a@1.service on b, z", "  a:blue@1.service on no host (none reports it)"]));
  it("only the group asked for", () =>
    expect(whatStops(spec, "blue", new Map([report("h", ["a:blue@1.service"])]) as never)).toEqual([
      "  a:blue@1.service on h",
    ]));
  it("an inactive unit is not one that stops", () =>
    expect(whatStops(spec, "blue", new Map([report("h", ["a:blue@1.service"], "inactive")]) as never)).toEqual([
      "  a:blue@1.service on no host (none reports it)",
    ]));
});
