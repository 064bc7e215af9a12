/**
 * shared/fleet.ts against the REAL fleetd v1.0.0: a two-machine fleet cluster (etcd 3.4 on this
 * machine, fleetd socket-activated inside real systemd test hosts) from ../shared/fleet's tested
 * recipe, with the binaries scripts/install-fleet.sh put in .fleet/. Where they are missing the
 * suite is SKIPPED and says why on stderr: never a silent pass.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, FleetError, sameOptions, unitOptions } from "../../shared/fleet.js";
import { startConsul } from "../harness/consul-dev.js";
import { ROOT } from "../harness/paths.js";
import { configDir, houston } from "../helpers/cli.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { eventually } from "../helpers/specs.js";

const SHARED = process.env.HOUSTON_FLEET_DIR ?? join(ROOT, "..", "shared", "fleet");
const BIN = join(ROOT, ".fleet", "bin");
const PEER = "/tmp/houston-fleetd-test";
const available =
  existsSync(join(SHARED, "cluster-up.sh")) && existsSync(join(BIN, "fleetd")) && existsSync(join(BIN, "etcd"));
if (!available)
  process.stderr.write(
    `\n*** SKIPPED test/system/fleetd.test.ts: no real fleet (${SHARED}/cluster-up.sh and ${BIN}/{fleetd,etcd} from scripts/install-fleet.sh are needed) ***\n\n`,
  );

const env = {
  ...process.env,
  FLEET_PEER_DIR: PEER,
  FLEET_BIN: BIN,
  ETCD_BIN: join(BIN, "etcd"),
  FLEET_HOSTS: "hfl1 hfl2",
  FLEET_BRIDGE: "hflbr0",
  FLEET_SUBNET: "10.79.9",
  FLEET_ETCD_PORT: "23891",
  FLEET_ETCD_PEER_PORT: "23901",
};
let fleet: Fleet;
let socket = "";
beforeAll(() => {
  if (!available) return;
  execFileSync("bash", [join(SHARED, "cluster-down.sh")], { env, stdio: "ignore" }); // a killed run's leftovers
  execFileSync("bash", [join(SHARED, "cluster-up.sh")], { env, stdio: "ignore" });
  const vars = readFileSync(join(PEER, "run", "env"), "utf8");
  socket = /^FLEET_SOCKET=(.*)$/m.exec(vars)?.[1] ?? "";
  fleet = new Fleet(`unix://${socket}`);
}, 120_000);
afterAll(() => {
  if (available) execFileSync("bash", [join(SHARED, "cluster-down.sh")], { env, stdio: "ignore" });
}, 120_000);

const unit = (extra: string) =>
  `[Unit]\nDescription=houston fleet edge test\n\n[Service]\nExecStart=/bin/sleep 100000\n\n[X-Fleet]\n${extra}\n`;

describe.skipIf(!available)("the fleet edge against the real fleetd v1.0.0", () => {
  it("lists machines with their metadata, and no units at first ({})", async () => {
    const machines = await fleet.machines();
    expect(machines).toHaveLength(2);
    for (const m of machines) expect(m.metadata?.role).toBe("web");
    expect(await fleet.units()).toEqual([]);
  });

  it("creates units launched, leaves the same options alone, reads the truth from /state, destroys", async () => {
    const global = unitOptions(unit("Global=true"), "test");
    const single = unitOptions(unit("MachineMetadata=role=web"), "test");
    expect(await fleet.putUnit("hedge-global.service", global, "launched")).toBe("created");
    expect(await fleet.putUnit("hedge.service", single, "launched")).toBe("created");
    expect(await fleet.putUnit("hedge.service", single, "launched")).toBe("unchanged");
    const got = await fleet.unit("hedge.service");
    expect(sameOptions(got?.options ?? [], single)).toBe(true);
    // global units show no machineID in /units: /state is the truth, one entry per machine
    const active = await eventually("both units active in /state", async () => {
      const st = (await fleet.states()).filter((s) => s.systemdActiveState === "active");
      return st.filter((s) => s.name === "hedge-global.service").length === 2 &&
        st.some((s) => s.name === "hedge.service")
        ? st
        : null;
    });
    expect(active.filter((s) => s.name === "hedge.service")).toHaveLength(1); // one machine, as fleet
    expect(await fleet.destroyUnit("hedge.service")).toBe(true);
    expect(await fleet.destroyUnit("hedge-global.service")).toBe(true);
    expect(await fleet.destroyUnit("hedge.service")).toBe(false);
    expect((await fleet.units()).map((u) => u.name)).toEqual([]);
  });

  it("houston nodes shows the environment's fleet machines beside the agents, and flags either alone", async () => {
    const consul = await startConsul();
    try {
      const [m1] = await fleet.machines();
      const kv = new KvLayout();
      const record = (node: string, machineId: string) =>
        JSON.stringify({ schema: 1, node, meta: {}, version: "t", startedAt: new Date().toISOString(), machineId });
      await consul.client.kvPut(kv.agent("with-fleet"), record("with-fleet", m1!.id));
      await consul.client.kvPut(kv.agent("agent-only"), record("agent-only", "f".repeat(32)));
      const dir = configDir({ "manifest.yaml": `environments:\n  test: {fleet: "unix://${socket}"}\n` });
      const r = await houston(consul.addr, dir, "--json", "nodes");
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as {
        nodes: { node: string; fleetMachine: string | null }[];
        fleet: { machines: { id: string }[]; withoutAgent: string[]; error: string | null };
      };
      expect(out.fleet.error).toBeNull();
      expect(out.fleet.machines).toHaveLength(2);
      expect(Object.fromEntries(out.nodes.map((n) => [n.node, n.fleetMachine]))).toEqual({
        "with-fleet": m1!.id,
        "agent-only": null,
      });
      expect(out.fleet.withoutAgent).toHaveLength(1);
      const text = await houston(consul.addr, dir, "nodes");
      expect(text.stdout).toMatch(/agent-only .*NO FLEET MACHINE/);
      expect(text.stdout).toMatch(/^- +NO HOUSTON AGENT/m);
    } finally {
      await consul.stop();
    }
  });

  it("fleet's errors become messages naming the request", async () => {
    await expect(fleet.putUnit("missing.service", [], "launched")).rejects.toThrow(
      /fleet PUT unit missing.service: 409 unit does not exist and options field empty/,
    );
    const e = await fleet
      .putUnit("g2.service", unitOptions(unit("Global=true\nMachineOf=x.service"), "test"), "launched")
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(FleetError);
    expect((e as FleetError).status).toBe(400);
  });
});
