/**
 * The stacks' Consul services against a real Consul 1.8.7: a unit that leaves takes its check
 * with it in the same sync (1.8.7 would also drop it on the re-registration alone), and a
 * restarted agent (a new Registrar) drops Houston's stray
 * registrations on the local agent — a stack service nothing runs for, a check of a unit that
 * left, a declared service it does not know — and leaves another tool's alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registrar } from "../../agent/registrar.js";
import type { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { SCHEMA_VERSION, type StatusReport } from "../../shared/spec.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

let consul: TestConsul;
let c: Consul;
let node: string;
beforeAll(async () => {
  consul = await startConsul();
  c = consul.client;
  node = (await c.agentSelf()).nodeName;
});
afterAll(async () => consul?.stop());

const report = (stack: string, units: string[]): Omit<StatusReport, "updatedAt"> => ({
  schema: SCHEMA_VERSION,
  node,
  stack,
  generation: 1,
  desiredGeneration: 1,
  converging: false,
  units: units.map((name) => ({ name, activeState: "active", subState: "running" })),
  archives: [],
  errors: [],
});
const checkIds = async () => (await c.agentChecks()).map((x) => x.id).sort();
const registrar = () => new Registrar(c, new KvLayout("houston"), () => undefined);

describe("the registrar keeps Consul to what runs", () => {
  it("a unit that leaves takes its check along; a stack that leaves, its service", async () => {
    const r = registrar();
    const versions = new Map([["web", "1"]]);
    expect(await r.syncStacks(node, [report("web", ["web@1.service", "web@2.service"])], versions)).toBe(true);
    expect(await checkIds()).toEqual(["houston-unit:web:web@1.service", "houston-unit:web:web@2.service"]);
    expect(await r.syncStacks(node, [report("web", ["web@2.service"])], versions)).toBe(true);
    expect(await checkIds()).toEqual(["houston-unit:web:web@2.service"]);
    expect(await r.syncStacks(node, [], versions)).toBe(true);
    expect(await checkIds()).toEqual([]);
    expect((await c.agentServices()).map((s) => s.id)).not.toContain("houston-stack:web");
  });

  it("a restarted agent drops Houston's strays, never another tool's", async () => {
    await registrar().syncStacks(node, [report("web", ["web@3.service"])], new Map([["web", "3"]]));
    // strays: a check of a unit that left, a stack service and a declared service nothing runs for
    await c.agentServiceRegister({
      ID: "houston-stack:web",
      Name: "houston-web",
      Meta: { houston_stack: "web", houston_node: node },
      Checks: [
        { CheckID: "houston-unit:web:web@3.service", Name: "web@3.service", TTL: "8760h" },
        { CheckID: "houston-unit:web:web@1.service", Name: "web@1.service", TTL: "8760h" },
      ],
    });
    await c.agentServiceRegister({
      ID: "houston-stack:ghost",
      Name: "houston-ghost",
      Meta: { houston_stack: "ghost" },
    });
    await c.agentServiceRegister({
      ID: "houston:old@1.service",
      Name: "old",
      Meta: { houston_unit: "old@1.service", houston_stack: "old" },
    });
    await c.agentServiceRegister({ ID: "houston-stack:theirs", Name: "theirs", Meta: { owner: "ops" } });
    const restarted = registrar();
    const ok = await restarted.syncStacks(
      node,
      [report("web", ["web@3.service"])],
      new Map([["web", "3"]]),
      () => new Set(),
    );
    expect(ok).toBe(true);
    expect(await checkIds()).toEqual(["houston-unit:web:web@3.service"]);
    const services = (await c.agentServices()).map((s) => s.id).sort();
    expect(services).toContain("houston-stack:web");
    expect(services).toContain("houston-stack:theirs");
    expect(services).not.toContain("houston-stack:ghost");
    expect(services).not.toContain("houston:old@1.service");
  });
});
