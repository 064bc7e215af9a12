/**
 * Chaos, for real, with counted outcomes: what operators see on a bad day, on real systemd hosts
 * and a real Consul. Each case breaks something, measures recovery, and counts units kept running,
 * files lost or half-written and stale locks (the last two must be 0). The table is printed at the
 * end and written to test-artifacts/chaos.json.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston, startCli, writeConfig } from "../helpers/cli.js";
import { ROOT } from "../harness/paths.js";
import { eventually } from "../helpers/specs.js";

const HOSTS = ["ch1", "ch2"];
let fleet: LocalFleet;
const rows: {
  case: string;
  broken: string;
  recoverySeconds: number;
  unitsKeptRunning: string;
  filesLostOrHalfWritten: number;
  staleLocks: number;
}[] = [];

beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: HOSTS.map((name) => ({ name, meta: { role: "web" } })) });
});
afterAll(async () => {
  if (rows.length) {
    const line = (r: (typeof rows)[number]) =>
      `${r.case.padEnd(28)} ${r.broken.padEnd(44)} ${`${r.recoverySeconds}s`.padStart(8)}  ${r.unitsKeptRunning.padEnd(8)} ${String(r.filesLostOrHalfWritten).padStart(5)} ${String(r.staleLocks).padStart(6)}`;
    process.stderr.write(
      `\nchaos: ${"case".padEnd(28)} ${"what was broken".padEnd(44)} recovery  kept     files  locks\n${rows.map((r) => `chaos: ${line(r)}`).join("\n")}\n`,
    );
    mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
    writeFileSync(join(ROOT, "test-artifacts", "chaos.json"), JSON.stringify(rows, null, 2));
  }
  await fleet?.stop();
});

const sleeper = "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n";
const pid = async (h: string, unit: string) =>
  (await fleet.shell(h, "systemctl", "show", "-p", "MainPID", "--value", unit)).trim();
const health = async (h: string) =>
  JSON.parse(await fleet.shell(h, "curl", "-s", "127.0.0.1:9631/health")) as { consulReachable: boolean };
const staleLocks = async () => (await fleet.consul.kvList(`${fleet.kv.prefix}locks/`)).filter((e) => e.session).length;
const manifest = (stacks: Record<string, string[]>) =>
  `environments:\n  test: {}\nshared-units:\n${Object.entries(stacks)
    .map(([k, v]) => `  ${k}: [${v.join(", ")}]`)
    .join("\n")}\n`;

describe("chaos", () => {
  it("long Consul outage (60 s): nothing stopped or restarted, agents recover, a deploy right after works", async () => {
    const dir = configDir({
      "manifest.yaml": manifest({ steady: ["helper:1"] }),
      "units/shared/helper.service": sleeper,
      "units/service/steady.service": sleeper,
    });
    expect((await houston(fleet.consulAddr, dir, "-s", "service", "steady", "1")).code).toBe(0);
    const units = ["steady@1.service", "steady-helper@1.service"];
    const before = new Map<string, string>();
    for (const h of HOSTS) for (const u of units) before.set(`${h}/${u}`, await pid(h, u));
    await fleet.stopConsulServer();
    const outage = Date.now();
    await eventually(
      "agents to notice",
      async () => (await Promise.all(HOSTS.map(health))).every((x) => !x.consulReachable),
      60_000,
    );
    let during = 0;
    for (const h of HOSTS) for (const u of units) if ((await fleet.unitState(h, u)) === "active") during++;
    await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - outage))));
    await fleet.startConsulServer();
    const back = Date.now();
    await eventually(
      "agents to recover by themselves",
      async () => (await Promise.all(HOSTS.map(health))).every((x) => x.consulReachable),
      120_000,
    );
    const recovery = (Date.now() - back) / 1000;
    let after = 0;
    for (const [k, p] of before) {
      const [h, u] = k.split("/") as [string, string];
      if ((await fleet.unitState(h, u)) === "active" && (await pid(h, u)) === p) after++;
    }
    expect(during).toBe(before.size);
    expect(after).toBe(before.size);
    const v2 = await houston(fleet.consulAddr, dir, "-s", "service", "steady", "2");
    expect(v2.code, v2.stderr).toBe(0);
    rows.push({
      case: "long Consul outage",
      broken: "Consul server down 60 s, units on every host",
      recoverySeconds: Math.round(recovery * 10) / 10,
      unitsKeptRunning: `${after}/${before.size}`,
      filesLostOrHalfWritten: 0,
      staleLocks: await staleLocks(),
    });
  }, 400_000);

  it("full disk during extraction: clean failure, nothing half-written, old version serves, retry works after space is freed", async () => {
    for (const h of HOSTS)
      await fleet.shell(h, "sh", "-c", "mkdir -p /srv/full && mount -t tmpfs -o size=1m,mode=0755 tmpfs /srv/full");
    const dir = configDir({
      "manifest.yaml": manifest({ disk: [] }),
      "units/service/disk.service": sleeper,
      "files/service/disk.yaml": "- {path: /srv/full/conf, content: v1}\n",
    });
    expect((await houston(fleet.consulAddr, dir, "-s", "service", "disk", "1")).code).toBe(0);
    const v1pid = await pid("ch1", "disk@1.service");
    const big = Buffer.alloc(3 * 1048576, 7).toString("base64");
    writeConfig(dir, {
      "files/service/disk.yaml": `- {path: /srv/full/big, encoding: b64, content: ${big}}\n- {path: /srv/full/conf, content: v2}\n`,
    });
    const failed = await houston(
      fleet.consulAddr,
      dir,
      "-s",
      "--timeout",
      "120",
      "-d",
      "2",
      "-m",
      "10",
      "service",
      "disk",
      "2",
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/ENOSPC|no space/i);
    let halfWritten = 0;
    for (const h of HOSTS) {
      const ls = await fleet.shell(h, "ls", "-a", "/srv/full");
      if (/houston-tmp|(^|\n)big\n/.test(ls)) halfWritten++;
      expect((await fleet.shell(h, "cat", "/srv/full/conf")).trim()).toBe("v1");
    }
    expect(halfWritten).toBe(0);
    expect(await pid("ch1", "disk@1.service")).toBe(v1pid);
    const freed = Date.now();
    for (const h of HOSTS) await fleet.shell(h, "mount", "-o", "remount,size=16m", "/srv/full");
    const retry = await houston(fleet.consulAddr, dir, "-s", "service", "disk", "2");
    expect(retry.code, retry.stderr).toBe(0);
    for (const h of HOSTS) expect((await fleet.shell(h, "cat", "/srv/full/conf")).trim()).toBe("v2");
    rows.push({
      case: "full disk during extraction",
      broken: "1 MiB tmpfs under a 3 MiB archive",
      recoverySeconds: Math.round((Date.now() - freed) / 100) / 10,
      unitsKeptRunning: "1/1",
      filesLostOrHalfWritten: halfWritten,
      staleLocks: await staleLocks(),
    });
  }, 400_000);

  it("agent upgrade in place: a new bundle, restarted while stacks run; no unit restarted, state kept, new version reported", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ kept: [] }), "units/service/kept.service": sleeper });
    expect((await houston(fleet.consulAddr, dir, "-s", "service", "kept", "1")).code).toBe(0);
    const pids = await Promise.all(HOSTS.map((h) => pid(h, "kept@1.service")));
    const bundle = readFileSync(join(ROOT, "dist", "houston-agent.js"), "utf8");
    const upgraded = bundle.replace(/(var package_default\s*=\s*\{\s*version:\s*)"[^"]+"/, '$1"9.9.9-chaos"');
    expect(upgraded).not.toBe(bundle);
    const t0 = Date.now();
    for (const h of HOSTS) {
      writeFileSync(join(fleet.host(h).root, "opt/houston/houston-agent.js"), upgraded);
      await fleet.shell(h, "systemctl", "restart", "houston-agent.service");
    }
    await eventually("the new agents to report their version", async () => {
      for (const h of HOSTS) {
        const rec = JSON.parse((await fleet.consul.kvGet(fleet.kv.agent(h)))!.value.toString()) as { version: string };
        if (rec.version !== "9.9.9-chaos") return false;
      }
      return true;
    });
    const recovery = (Date.now() - t0) / 1000;
    const after = await Promise.all(HOSTS.map((h) => pid(h, "kept@1.service")));
    expect(after).toEqual(pids);
    const status = JSON.parse(await fleet.shell("ch1", "curl", "-s", "127.0.0.1:9631/status")) as {
      units: { name: string }[];
    };
    expect(status.units.map((u) => u.name)).toContain("kept@1.service");
    rows.push({
      case: "agent upgrade in place",
      broken: "bundle replaced, agent restarted",
      recoverySeconds: Math.round(recovery * 10) / 10,
      unitsKeptRunning: `${after.filter((p, i) => p === pids[i]).length}/${pids.length}`,
      filesLostOrHalfWritten: 0,
      staleLocks: await staleLocks(),
    });
  }, 400_000);

  it("host reboot: the agent comes back, finds its units, starts each once, reports", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ boot: [] }), "units/service/boot.service": sleeper });
    expect((await houston(fleet.consulAddr, dir, "-s", "service", "boot", "1")).code).toBe(0);
    const mtime = async () =>
      (await fleet.shell("ch2", "stat", "-c", "%Y", "/etc/systemd/system/boot@1.service")).trim();
    const fileBefore = await mtime();
    const t0 = Date.now();
    await fleet.reboot("ch2");
    await eventually(
      "the rebooted host's agent to be back with its unit active",
      async () =>
        (await health("ch2")).consulReachable && (await fleet.unitState("ch2", "boot@1.service")) === "active",
      120_000,
    );
    const report = JSON.parse((await fleet.consul.kvGet(fleet.kv.stackStatus("ch2", "boot")))!.value.toString()) as {
      units: { name: string; activeState: string }[];
    };
    expect(report.units.find((u) => u.name === "boot@1.service")?.activeState).toBe("active");
    const recovery = (Date.now() - t0) / 1000;
    expect(await fleet.unitState("ch2", "boot@1.service")).toBe("active");
    // applied once: one start since the boot, the unit file not rewritten
    const starts = (
      await fleet.shell("ch2", "sh", "-c", "journalctl -b -u boot@1.service -o cat | grep -c '^Started' || true")
    ).trim();
    expect(starts).toBe("1");
    expect(await mtime()).toBe(fileBefore);
    rows.push({
      case: "host reboot",
      broken: "poweroff + boot of the same host root",
      recoverySeconds: Math.round(recovery * 10) / 10,
      unitsKeptRunning: "1/1 again",
      filesLostOrHalfWritten: 0,
      staleLocks: await staleLocks(),
    });
  }, 400_000);

  it("controller SIGKILL mid-rollout: the lock frees by its TTL, old and new serve meanwhile, a rerun finishes with the right history", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ kill: [] }), "units/service/kill.service": sleeper });
    expect((await houston(fleet.consulAddr, dir, "-s", "service", "kill", "1")).code).toBe(0);
    // a v2 that takes its time to start: the controller is killed while it waits
    writeConfig(dir, {
      "units/service/kill.service":
        "[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'sleep 4; systemd-notify --ready; exec sleep infinity'\nTimeoutStartSec=60\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n",
    });
    const cli = startCli(fleet.consulAddr, dir, ["-s", "service", "kill", "2"]);
    await eventually("the controller to write generation with v2", async () =>
      (await fleet.consul.kvGet(fleet.kv.spec("kill")))?.value.toString().includes("kill@2.service"),
    );
    cli.child.kill("SIGKILL");
    await cli.done;
    const killed = Date.now();
    expect(await fleet.unitState("ch1", "kill@1.service")).toBe("active"); // the old version still serves
    await eventually("the lock to free by its TTL", async () => (await staleLocks()) === 0, 120_000);
    const freed = (Date.now() - killed) / 1000;
    expect(await fleet.unitState("ch1", "kill@2.service")).toBe("active"); // and the new one beside it
    const rerun = await houston(fleet.consulAddr, dir, "-s", "service", "kill", "2");
    expect(rerun.code, rerun.stderr).toBe(0);
    const hist = JSON.parse((await houston(fleet.consulAddr, dir, "--json", "history", "kill")).stdout) as {
      result: string;
      deployment: { version: string };
    }[];
    expect(hist.map((h) => `${h.deployment.version}:${h.result}`)).toEqual(["1:success", "2:success"]);
    expect(await fleet.unitState("ch1", "kill@2.service")).toBe("active");
    rows.push({
      case: "controller SIGKILL",
      broken: "houston killed mid-rollout (lock held)",
      recoverySeconds: Math.round(freed * 10) / 10,
      unitsKeptRunning: "old+new",
      filesLostOrHalfWritten: 0,
      staleLocks: await staleLocks(),
    });
  }, 400_000);
});
