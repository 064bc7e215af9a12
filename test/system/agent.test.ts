/**
 * The agent on real systemd test hosts with a real Consul, in the production topology:
 * Consul server on the machine; in each host a Consul client and the agent as systemd units.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Systemd } from "../../agent/systemd.js";
import { SCHEMA_VERSION } from "../../shared/spec.js";
import { LocalFleet } from "../harness/local-fleet.js";
import { dep, eventually, file, planUnits, publish, report, reportAt, unitText } from "../helpers/specs.js";
import { rawTar } from "../helpers/tar.js";

let fleet: LocalFleet;
const web = "[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n";
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "ag1", meta: { role: "web" } },
      { name: "ag2", meta: { role: "db" } },
    ],
  });
});
afterAll(async () => fleet?.stop());

const c = () => fleet.consul;
const kv = () => fleet.kv;
const root = (h: string) => fleet.host(h).root;
const mainPid = async (h: string, unit: string) =>
  (await fleet.shell(h, "systemctl", "show", "-p", "MainPID", "--value", unit)).trim();

describe("agent on real systemd hosts", () => {
  it("applies a spec: units active where placed, files present with their modes", async () => {
    const units = await planUnits(
      c(),
      kv(),
      "alpha",
      [
        dep("sleeper", "1", unitText("ExecStart=/bin/sleep infinity", web)),
        dep("anywhere", "1", unitText("ExecStart=/bin/sleep infinity")),
      ],
      [file("/etc/alpha/conf", "a=1\n", 0o640), file("/opt/alpha/run.sh", "#!/bin/sh\n", 0o755)],
    );
    const gen = await publish(c(), kv(), "alpha", units);
    const [archive, sleeper, anywhere] = units.map((u) => u.name);
    const r1 = await reportAt(c(), kv(), "ag1", "alpha", gen, {
      [archive!]: "active",
      [sleeper!]: "active",
      [anywhere!]: "active",
    });
    expect(r1.errors).toEqual([]);
    expect(r1.archives).toEqual([units[0]!.archive]);
    const r2 = await reportAt(c(), kv(), "ag2", "alpha", gen, { [anywhere!]: "active" });
    expect(r2.units.map((u) => u.name)).not.toContain(sleeper);
    expect(await fleet.unitState("ag1", sleeper!)).toBe("active");
    expect(await fleet.unitState("ag2", sleeper!)).not.toBe("active");
    expect(readFileSync(join(root("ag1"), "etc/alpha/conf"), "utf8")).toBe("a=1\n");
    expect(statSync(join(root("ag1"), "etc/alpha/conf")).mode & 0o7777).toBe(0o640);
    expect(statSync(join(root("ag1"), "opt/alpha/run.sh")).mode & 0o7777).toBe(0o755);
    // the unit file carries the chain to the archive unit, rendered for this host
    expect(readFileSync(join(root("ag1"), "etc/systemd/system", sleeper!), "utf8")).toContain(`Requires=${archive}`);
  });

  it("a new version runs beside the old one until the spec drops the old one", async () => {
    const v1 = await planUnits(c(), kv(), "beta", [dep("app", "1", unitText("ExecStart=/bin/sleep infinity"))]);
    await reportAt(c(), kv(), "ag1", "beta", await publish(c(), kv(), "beta", v1), { "beta-app@1.service": "active" });
    const v2 = await planUnits(c(), kv(), "beta", [dep("app", "2", unitText("ExecStart=/bin/sleep infinity"))]);
    const g2 = await publish(c(), kv(), "beta", [...v1, ...v2]);
    await reportAt(c(), kv(), "ag1", "beta", g2, { "beta-app@1.service": "active", "beta-app@2.service": "active" });
    const pidV2 = await mainPid("ag1", "beta-app@2.service");
    const g3 = await publish(c(), kv(), "beta", v2);
    const r = await reportAt(c(), kv(), "ag1", "beta", g3, { "beta-app@2.service": "active" });
    expect(r.units.map((u) => u.name)).toEqual(["beta-app@2.service"]);
    expect(existsSync(join(root("ag1"), "etc/systemd/system/beta-app@1.service"))).toBe(false);
    expect(await mainPid("ag1", "beta-app@2.service")).toBe(pidV2); // untouched by the prune
  });

  it("spec removed: units stopped and removed, files removed, report deleted", async () => {
    const units = await planUnits(
      c(),
      kv(),
      "gamma",
      [dep("app", "1", unitText("ExecStart=/bin/sleep infinity"))],
      [file("/etc/gamma/a", "a")],
    );
    await reportAt(c(), kv(), "ag1", "gamma", await publish(c(), kv(), "gamma", units), {
      "gamma-app@1.service": "active",
    });
    expect(existsSync(join(root("ag1"), "etc/gamma/a"))).toBe(true);
    await c().kvDelete(kv().spec("gamma"));
    await eventually("gamma report to disappear", async () => (await report(c(), kv(), "ag1", "gamma")) === null);
    expect(existsSync(join(root("ag1"), "etc/systemd/system/gamma-app@1.service"))).toBe(false);
    expect(existsSync(join(root("ag1"), "etc/gamma"))).toBe(false);
    expect(["inactive", "unknown"]).toContain(await fleet.unitState("ag1", "gamma-app@1.service"));
  });

  it("a failing unit is reported failed with systemd's Result and its log, and not restarted", async () => {
    const units = await planUnits(c(), kv(), "delta", [
      dep("bad", "1", unitText("ExecStart=/bin/sh -c 'echo boom-from-delta; exit 3'", web)),
    ]);
    const gen = await publish(c(), kv(), "delta", units);
    const r = await reportAt(c(), kv(), "ag1", "delta", gen, { "delta-bad@1.service": "failed" });
    const u = r.units.find((x) => x.name === "delta-bad@1.service")!;
    expect(u.result).toBe("exit-code");
    expect(u.log?.join("\n")).toContain("boom-from-delta");
    const started = (
      await fleet.shell(
        "ag1",
        "systemctl",
        "show",
        "-p",
        "ExecMainStartTimestampMonotonic",
        "--value",
        "delta-bad@1.service",
      )
    ).trim();
    await new Promise((res) => setTimeout(res, 3000));
    expect(
      (
        await fleet.shell(
          "ag1",
          "systemctl",
          "show",
          "-p",
          "ExecMainStartTimestampMonotonic",
          "--value",
          "delta-bad@1.service",
        )
      ).trim(),
    ).toBe(started);
    expect(await fleet.unitState("ag1", "delta-bad@1.service")).toBe("failed");
  });

  it("never touches a unit Houston did not create", async () => {
    const units = await planUnits(c(), kv(), "eps", [dep("app", "1", unitText("ExecStart=/bin/sleep infinity", web))]);
    writeFileSync(join(root("ag1"), "etc/systemd/system/hand-made.service"), unitText("ExecStart=/bin/sleep infinity"));
    writeFileSync(
      join(root("ag1"), "etc/systemd/system/eps-app@1.service"),
      "# mine, not Houston's\n" + unitText("ExecStart=/bin/sleep 12345"),
    );
    await fleet.shell("ag1", "systemctl", "daemon-reload");
    await fleet.shell("ag1", "systemctl", "start", "hand-made.service");
    await publish(c(), kv(), "eps", units);
    const r = await eventually("eps error", async () =>
      (await report(c(), kv(), "ag1", "eps"))?.errors.length ? report(c(), kv(), "ag1", "eps") : null,
    );
    expect(r!.errors[0]).toContain("eps-app@1.service exists and was not created by Houston");
    await c().kvDelete(kv().spec("eps"));
    await eventually("eps report gone", async () => (await report(c(), kv(), "ag1", "eps")) === null);
    expect(readFileSync(join(root("ag1"), "etc/systemd/system/eps-app@1.service"), "utf8")).toContain(
      "mine, not Houston's",
    );
    expect(await fleet.unitState("ag1", "hand-made.service")).toBe("active");
  });

  it("rejects archives with '../' or escaping symlinks, and digest mismatches: nothing written", async () => {
    const cases = [
      {
        stack: "evil1",
        bytes: rawTar([
          { path: "etc/evil1-ok", data: "x" },
          { path: "../../evil1", data: "x" },
        ]),
        want: /path escapes the root/,
      },
      {
        stack: "evil2",
        bytes: rawTar([{ path: "etc/evil2-link", type: "SymbolicLink", linkpath: "../../../../evil2" }]),
        want: /points outside the root/,
      },
    ];
    for (const x of cases) {
      const sha = createHash("sha256").update(x.bytes).digest("hex");
      await c().kvPut(kv().archiveChunk(sha, 0), x.bytes);
      await c().kvPut(
        kv().archiveMeta(sha),
        JSON.stringify({ schema: SCHEMA_VERSION, sha256: sha, size: x.bytes.length, chunks: 1, files: [] }),
      );
      const units = await planUnits(c(), kv(), x.stack, [
        dep("app", "1", unitText("ExecStart=/bin/sleep infinity", web)),
      ]);
      const archiveUnit = {
        ...units[0]!,
        name: `${x.stack}-file-deploy@${sha.slice(0, 8)}.service`,
        component: "file-deploy",
        version: sha.slice(0, 8),
        role: "archive" as const,
        archive: sha,
        text: unitText("Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true"),
      };
      await publish(c(), kv(), x.stack, [archiveUnit, ...units]);
    }
    // digest mismatch: the chunk's bytes are not what the digest says
    const good = rawTar([{ path: "etc/evil3", data: "x" }]);
    const fake = "0".repeat(64);
    await c().kvPut(kv().archiveChunk(fake, 0), good);
    await c().kvPut(
      kv().archiveMeta(fake),
      JSON.stringify({ schema: SCHEMA_VERSION, sha256: fake, size: good.length, chunks: 1, files: [] }),
    );
    const u3 = await planUnits(c(), kv(), "evil3", [dep("app", "1", unitText("ExecStart=/bin/sleep infinity", web))]);
    await publish(c(), kv(), "evil3", [
      {
        ...u3[0]!,
        name: "evil3-file-deploy@00000000.service",
        component: "file-deploy",
        version: "00000000",
        role: "archive",
        archive: fake,
      },
      ...u3, // an archive comes with its deployment's units
    ]);

    for (const [stack, re] of [
      ["evil1", /path escapes the root/],
      ["evil2", /points outside the root/],
      ["evil3", /digest mismatch/],
    ] as const) {
      const r = await eventually(`${stack} error`, async () =>
        (await report(c(), kv(), "ag1", stack))?.errors.length ? report(c(), kv(), "ag1", stack) : null,
      );
      expect(r!.errors.join("\n")).toMatch(re);
      expect(r!.units.every((u) => u.activeState !== "active")).toBe(true);
    }
    for (const p of ["etc/evil1-ok", "etc/evil2-link", "etc/evil3"])
      expect(existsSync(join(root("ag1"), p))).toBe(false);
    // the agent's root is the host's "/": an escape would land in the host's root fs or the machine's
    for (const p of [join(root("ag1"), "evil1"), join(root("ag1"), "evil2"), "/evil1", "/evil2"])
      expect(existsSync(p)).toBe(false);
    for (const s of ["evil1", "evil2", "evil3"]) await c().kvDelete(kv().spec(s));
  });

  it("a bad spec is an error for its stack only; the last good spec stays in force", async () => {
    const units = await planUnits(c(), kv(), "zeta", [dep("app", "1", unitText("ExecStart=/bin/sleep infinity", web))]);
    const gen = await publish(c(), kv(), "zeta", units);
    await reportAt(c(), kv(), "ag1", "zeta", gen, { "zeta-app@1.service": "active" });
    await c().kvPut(kv().spec("zeta"), "{not json");
    await c().kvPut(kv().spec("eta"), JSON.stringify({ schema: 99, stack: "eta" }));
    const other = await planUnits(c(), kv(), "theta", [
      dep("app", "1", unitText("ExecStart=/bin/sleep infinity", web)),
    ]);
    const tg = await publish(c(), kv(), "theta", other);
    await reportAt(c(), kv(), "ag1", "theta", tg, { "theta-app@1.service": "active" });
    const z = await eventually("zeta error", async () =>
      (await report(c(), kv(), "ag1", "zeta"))?.errors.length ? report(c(), kv(), "ag1", "zeta") : null,
    );
    expect(z!.errors[0]).toMatch(/houston\/stacks\/zeta\/spec: not valid JSON/);
    expect(z!.units.find((u) => u.name === "zeta-app@1.service")?.activeState).toBe("active");
    const e = await eventually("eta error", async () => report(c(), kv(), "ag1", "eta"));
    expect(e.errors[0]).toMatch(/stacks\/eta\/spec: schema: unknown schema version/);
    for (const s of ["zeta", "eta", "theta"]) await c().kvDelete(kv().spec(s));
  });

  it("agent killed mid-apply and restarted: converges with no duplicates", async () => {
    const slow = unitText("Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 3", web);
    const units = await planUnits(c(), kv(), "kappa", [
      dep("slow", "1", slow),
      dep("after", "1", unitText("ExecStart=/bin/sleep infinity", web)),
    ]);
    const gen = await publish(c(), kv(), "kappa", units);
    await eventually(
      "slow unit activating",
      async () => (await fleet.unitState("ag1", "kappa-slow@1.service")) === "activating",
    );
    await fleet.shell("ag1", "systemctl", "kill", "-s", "KILL", "houston-agent.service");
    const r = await reportAt(c(), kv(), "ag1", "kappa", gen, {
      "kappa-slow@1.service": "active",
      "kappa-after@1.service": "active",
    });
    expect(r.units.map((u) => u.name)).toEqual(["kappa-slow@1.service", "kappa-after@1.service"]);
    const listed = await fleet.shell("ag1", "systemctl", "list-units", "--all", "--plain", "--no-legend", "kappa-*");
    expect(
      listed
        .trim()
        .split("\n")
        .map((l) => l.split(/\s+/)[0])
        .sort(),
    ).toEqual(["kappa-after@1.service", "kappa-slow@1.service"]);
    expect(
      Number(await fleet.shell("ag1", "systemctl", "show", "-p", "NRestarts", "--value", "houston-agent.service")),
    ).toBeGreaterThanOrEqual(1);
    await c().kvDelete(kv().spec("kappa"));
  });

  it("Consul gone for a while: units keep running; the agent recovers without restarting them", async () => {
    const units = await planUnits(c(), kv(), "omega", [
      dep("app", "1", unitText("ExecStart=/bin/sleep infinity", web)),
    ]);
    await reportAt(c(), kv(), "ag1", "omega", await publish(c(), kv(), "omega", units), {
      "omega-app@1.service": "active",
    });
    const pid = await mainPid("ag1", "omega-app@1.service");
    await fleet.stopConsulServer();
    const health = async () =>
      JSON.parse(await fleet.shell("ag1", "curl", "-s", "127.0.0.1:9631/health")) as { consulReachable: boolean };
    await eventually("agent to notice", async () => (await health()).consulReachable === false, 60_000);
    // the agent itself restarts while the server is away: it comes back from its SQLite cache
    await fleet.shell("ag1", "systemctl", "restart", "houston-agent.service");
    const status = async () =>
      JSON.parse(await fleet.shell("ag1", "curl", "-s", "127.0.0.1:9631/status")) as {
        node: string;
        ready: boolean;
        units: { name: string }[];
      };
    const cached = await eventually(
      "agent up from its cache",
      async () =>
        status().then(
          (s) => (s.ready ? s : null),
          () => null,
        ),
      30_000,
    );
    expect(cached.node).toBe("ag1");
    expect(cached.units.map((u) => u.name)).toContain("omega-app@1.service");
    expect(await fleet.unitState("ag1", "omega-app@1.service")).toBe("active");
    expect(await mainPid("ag1", "omega-app@1.service")).toBe(pid);
    await fleet.startConsulServer();
    await eventually("agent to reconnect", async () => (await health()).consulReachable === true, 60_000);
    const v2 = await planUnits(c(), kv(), "omega", [dep("app", "2", unitText("ExecStart=/bin/sleep infinity", web))]);
    const g = await publish(c(), kv(), "omega", [...units, ...v2]);
    await reportAt(c(), kv(), "ag1", "omega", g, { "omega-app@1.service": "active", "omega-app@2.service": "active" });
    expect(await mainPid("ag1", "omega-app@1.service")).toBe(pid);
  }, 150_000);

  it("serves /status and /metrics", async () => {
    const status = JSON.parse(await fleet.shell("ag1", "curl", "-s", "127.0.0.1:9631/status")) as {
      node: string;
      units: { name: string }[];
    };
    expect(status.node).toBe("ag1");
    expect(status.units.map((u) => u.name)).toContain("omega-app@2.service");
    const metrics = await fleet.shell("ag1", "curl", "-s", "127.0.0.1:9631/metrics");
    expect(metrics).toMatch(/^houston_reconcile_passes_total [1-9]\d*$/m);
    expect(metrics).toMatch(/^houston_units\{state="active"\} [1-9]\d*$/m);
  });

  it("registers a service passing only when it answers its check now; a restart never inherits the old status", async () => {
    // Consul's own first run is due at a random moment within the minute: what the test sees is the agent's look
    const houston = "\n[X-Houston]\nServicePort=18181\nServiceCheckInterval=60s\n";
    // started = listening: ExecStartPost holds systemd's start job until the port answers
    const listening = unitText(
      "ExecStart=/usr/bin/python3 -m http.server 18181 --bind 127.0.0.1\nExecStartPost=/bin/sh -c 'until curl -sf -o /dev/null 127.0.0.1:18181/; do sleep 0.1; done'",
      `${web}${houston}`,
    );
    const silent = unitText("ExecStart=/bin/sleep infinity", `${web}${houston}`);
    const check = async () =>
      (
        JSON.parse(await fleet.shell("ag1", "curl", "-sf", "127.0.0.1:8500/v1/agent/checks")) as Record<
          string,
          { Status: string }
        >
      )["service:houston:gate-web@1.service"]?.Status;
    const deploy = async (text: string) => {
      const units = await planUnits(c(), kv(), "gate", [dep("web", "1", text)]);
      await reportAt(c(), kv(), "ag1", "gate", await publish(c(), kv(), "gate", units), {
        "gate-web@1.service": "active",
      });
    };
    await deploy(listening);
    expect(await check()).toBe("passing");
    const journal = await fleet.shell("ag1", "journalctl", "-u", "houston-agent", "--no-pager", "-o", "cat");
    expect(journal).toContain(
      "registered gate-web for gate-web@1.service on port 18181: its check passed (asked by the agent)",
    );
    // same name, new content, nothing listening: Consul would keep "passing" for a re-registered check;
    // not passed yet is "warning" until Consul's own first run (due within the minute here)
    await deploy(silent);
    expect(await check()).toBe("warning");
    await publish(c(), kv(), "gate", []);
  });

  it("systemd loads a unit file added under a name it knew as not-found, without a reload", async () => {
    // the premise of skipping the reload in passes that only add units (agent/reconcile.ts)
    const sd = await Systemd.connect(fleet.host("ag1").dbus);
    const names = ["hx-added@1.service", "hx-added@2.service"];
    const path = (n: string) => join(root("ag1"), "etc/systemd/system", n);
    try {
      // asked before they exist (as the agent's check for foreign units does): known as not-found
      for (const n of names) expect((await sd.unitSource(n)).loadState).toBe("not-found");
      expect(await sd.allLoaded(names)).toBe(false);
      writeFileSync(path(names[0]!), "[Service]\nExecStart=/bin/sleep infinity\n");
      // the second requires the first, which systemd has loaded (a dependency loaded as not-found)
      writeFileSync(
        path(names[1]!),
        `[Unit]\nRequires=${names[0]}\nAfter=${names[0]}\n[Service]\nExecStart=/bin/sleep 1000\n`,
      );
      expect(await sd.allLoaded(names)).toBe(true);
      expect(await sd.startUnit(names[1]!)).toBe("done");
      const cmd = await fleet.shell("ag1", "systemctl", "show", "-p", "ExecStart", "--value", names[1]!);
      expect(cmd).toContain("/bin/sleep 1000");
      expect(await fleet.unitState("ag1", names[0]!)).toBe("active");
    } finally {
      for (const n of [...names].reverse()) await sd.stopUnit(n);
      for (const n of names) rmSync(path(n), { force: true });
      await sd.reload();
      sd.close();
    }
  });

  it("registers itself and its services again when the local Consul agent lost them", async () => {
    const units = await planUnits(c(), kv(), "reg", [
      dep("svc", "1", unitText("ExecStart=/bin/sleep infinity", `${web}\n[X-Houston]\nServicePort=9\n`)),
    ]);
    await reportAt(c(), kv(), "ag1", "reg", await publish(c(), kv(), "reg", units), { "reg-svc@1.service": "active" });
    const services = async () =>
      Object.keys(
        JSON.parse(await fleet.shell("ag1", "curl", "-sf", "127.0.0.1:8500/v1/agent/services")) as Record<
          string,
          unknown
        >,
      );
    expect(await services()).toEqual(expect.arrayContaining(["houston-agent", "houston:reg-svc@1.service"]));
    // the host's Consul client is rebuilt from scratch: its registrations are gone
    await fleet.shell("ag1", "systemctl", "stop", "houston-consul.service");
    await fleet.shell("ag1", "rm", "-rf", "/var/lib/consul");
    await fleet.shell("ag1", "systemctl", "start", "houston-consul.service");
    await eventually(
      "registrations to come back",
      async () => {
        const ids = await services().catch((): string[] => []);
        return ids.includes("houston-agent") && ids.includes("houston:reg-svc@1.service");
      },
      60_000,
    );
    const { entries } = await c().healthService("reg-svc", { tag: "version:1" });
    expect(entries.map((e) => e.Node.Node)).toEqual(["ag1"]);
  }, 90_000);

  it("a restart of the host's D-Bus daemon restarts the agent, which carries on", async () => {
    const restarts = async () =>
      Number(await fleet.shell("ag1", "systemctl", "show", "-p", "NRestarts", "--value", "houston-agent.service"));
    const before = await restarts();
    const units = await planUnits(c(), kv(), "bus", [dep("app", "1", unitText("ExecStart=/bin/sleep infinity", web))]);
    await reportAt(c(), kv(), "ag1", "bus", await publish(c(), kv(), "bus", units), { "bus-app@1.service": "active" });
    const pid = await mainPid("ag1", "bus-app@1.service");
    await fleet.shell("ag1", "systemctl", "restart", "dbus.service");
    await eventually("the agent to be restarted by systemd", async () => (await restarts()) > before, 30_000);
    const v2 = await planUnits(c(), kv(), "bus", [dep("app", "2", unitText("ExecStart=/bin/sleep infinity", web))]);
    const g = await publish(c(), kv(), "bus", [...units, ...v2]);
    await reportAt(c(), kv(), "ag1", "bus", g, { "bus-app@1.service": "active", "bus-app@2.service": "active" });
    expect(await mainPid("ag1", "bus-app@1.service")).toBe(pid);
  }, 90_000);
});
