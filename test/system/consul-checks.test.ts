/**
 * Consul shows only what runs (real hosts, each with its Consul client agent): after upgrades and
 * a remove, the Houston checks listed for each node are exactly the stack's units running there;
 * and an agent restarted while Consul holds stray registrations of Houston's (a stack service
 * that is gone, a check of a unit that left) drops them, and leaves another tool's alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston } from "../helpers/cli.js";
import { eventually } from "../helpers/specs.js";

let fleet: LocalFleet;
const HOSTS = ["cc1", "cc2"] as const;
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "cc1", meta: { role: "web" } },
      { name: "cc2", meta: { role: "db" } },
    ],
  });
});
afterAll(async () => fleet?.stop());

const unit = (role: string) =>
  `[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=${role}\n`;
const config = (version: number) =>
  configDir({
    "manifest.yaml": `environments:\n  test: {}\nshared-stacks:\n  chk: [web:${version}, db:${version}]\n`,
    "units/shared/web.service": unit("web"),
    "units/shared/db.service": unit("db"),
  });

const NodeChecks = z.array(z.object({ CheckID: z.string(), ServiceID: z.string() }));
/** the node's checks as the Consul servers' catalog lists them (what the UI shows) */
async function nodeChecks(node: string): Promise<z.infer<typeof NodeChecks>> {
  const res = await fetch(`${fleet.consulAddr}/v1/health/node/${node}`);
  return NodeChecks.parse(await res.json());
}
/** the stack's units running on the host, as systemd says */
async function running(host: string): Promise<string[]> {
  const out = await fleet.shell(host, "systemctl", "list-units", "--no-legend", "--plain", "--state=active", "chk-*");
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.endsWith(".service"))
    .sort();
}
/** waits until the Houston unit checks of `chk` listed for each node are exactly its running units */
async function checksMatchUnits(): Promise<void> {
  for (const host of HOSTS)
    await eventually(`${host}'s checks to be its running units`, async () => {
      const units = await running(host);
      const checks = (await nodeChecks(host))
        .filter((c) => c.CheckID.startsWith("houston-unit:chk:"))
        .map((c) => c.CheckID.slice("houston-unit:chk:".length))
        .sort();
      if (JSON.stringify(checks) === JSON.stringify(units)) return true;
      throw new Error(`checks ${checks.join(", ")}; units ${units.join(", ")}`);
    });
}

/** the host's local Consul agent, asked from inside the host */
const localConsul = (host: string, method: string, path: string, body?: unknown) =>
  fleet.shell(
    host,
    "curl",
    "-sf",
    "-X",
    method,
    ...(body === undefined ? [] : ["--data", JSON.stringify(body)]),
    `http://127.0.0.1:8500${path}`,
  );

describe("Consul shows only what runs", () => {
  it("after three upgrades and a remove, each node lists exactly the units running there", async () => {
    for (const version of [1, 2, 3]) {
      const d = await houston(fleet.consulAddr, config(version), "standalone", "chk");
      expect(d.code, d.stderr).toBe(0);
      expect(await running("cc1")).toEqual([`chk-web@${version}.service`]);
      expect(await running("cc2")).toEqual([`chk-db@${version}.service`]);
      await checksMatchUnits();
    }
    const r = await houston(fleet.consulAddr, config(3), "remove", "chk");
    expect(r.code, r.stderr).toBe(0);
    await checksMatchUnits();
    for (const host of HOSTS)
      await eventually(`${host} to list no houston-chk service`, async () =>
        (await nodeChecks(host)).every((c) => c.ServiceID !== "houston-stack:chk"),
      );
  });

  it("a restarted agent drops Houston's stray registrations, and only those", async () => {
    const d = await houston(fleet.consulAddr, config(4), "standalone", "chk");
    expect(d.code, d.stderr).toBe(0);
    // strays as an agent that stopped mid-way (or lost its state) leaves them: a stack service
    // nothing runs for, a check of a unit that left; and another tool's service
    await localConsul("cc1", "PUT", "/v1/agent/service/register", {
      ID: "houston-stack:ghost",
      Name: "houston-ghost",
      Meta: { houston_stack: "ghost", houston_node: "cc1" },
      Checks: [{ CheckID: "houston-unit:ghost:ghost-x@1.service", Name: "ghost-x@1.service", TTL: "8760h" }],
    });
    await localConsul("cc1", "PUT", "/v1/agent/check/register", {
      ID: "houston-unit:chk:chk-web@1.service",
      Name: "chk-web@1.service",
      ServiceID: "houston-stack:chk",
      TTL: "8760h",
    });
    await localConsul("cc1", "PUT", "/v1/agent/service/register", { ID: "theirs", Name: "theirs", Port: 9 });
    await eventually("the strays in the catalog", async () => {
      const ids = (await nodeChecks("cc1")).map((c) => c.CheckID);
      return ids.includes("houston-unit:ghost:ghost-x@1.service") && ids.includes("houston-unit:chk:chk-web@1.service");
    });
    await fleet.shell("cc1", "systemctl", "restart", "houston-agent.service");
    await checksMatchUnits();
    await eventually("the ghost service to be gone", async () =>
      (await nodeChecks("cc1")).every((c) => c.ServiceID !== "houston-stack:ghost"),
    );
    const services = JSON.parse(await localConsul("cc1", "GET", "/v1/agent/services")) as Record<string, unknown>;
    expect(Object.keys(services)).toContain("theirs");
    expect(Object.keys(services)).not.toContain("houston-stack:ghost");
  });
});
