/**
 * The cases every scheduler backend's placement must pass (as hono runs one suite over all its
 * routers). A new backend (controller/scheduler/<name>.ts) is added to BACKENDS.
 */
import { describe, expect, it } from "vitest";
import { agentsScheduler } from "../../controller/scheduler/agents.js";
import { fleetScheduler } from "../../controller/scheduler/fleet.js";
import type { Scheduler } from "../../controller/scheduler/scheduler.js";
import { UnplaceableUnitError } from "../../controller/rollout/rollout-plan.js";
import type { HostView } from "../../controller/rollout/progress.js";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import type { UnitSpec } from "../../shared/spec.js";
import { NO_PLACEMENTS as NONE } from "../../controller/scheduler/targets.js";

// placement is pure: the Consul client is never called here
const NOWHERE = new Consul({ addr: "http://127.0.0.1:1" });
const BACKENDS: Scheduler[] = [agentsScheduler(NOWHERE, new KvLayout()), fleetScheduler(NOWHERE, new KvLayout())];

const host = (node: string, meta: Record<string, string>): HostView => ({ node, meta, agent: "passing" });
const unit = (name: string, metadata: Record<string, string[]>, global = false): UnitSpec => ({
  name: `${name}@1.service`,
  stack: name,
  component: null,
  group: null,
  version: "1",
  role: "service",
  text: "[Service]\nExecStart=/bin/true\n",
  placements: [{ global, metadata }],
});
const HOSTS = [
  host("a", { role: "web", zone: "1" }),
  host("b", { role: "web", zone: "2" }),
  host("c", { role: "db", zone: "1" }),
];

for (const s of BACKENDS) {
  describe(`scheduler contract: ${s.name}`, () => {
    it("places every unit on hosts whose metadata matches, and only there", () => {
      const t = s.place([unit("web", { role: ["web"] }), unit("db", { role: ["db"] })], HOSTS, NONE);
      expect(t.map((x) => x.name)).toEqual(["web@1.service", "db@1.service"]);
      expect(t[0]!.hosts).toHaveLength(1); // one machine, as fleet
      for (const h of t[0]!.hosts) expect(["a", "b"]).toContain(h);
      expect(t[1]!.hosts).toEqual(["c"]);
    });
    it("global units go to every matching host", () => {
      expect(s.place([unit("g", {}, true)], HOSTS, NONE)[0]!.hosts).toEqual(["a", "b", "c"]);
    });
    it("several keys must all match", () => {
      expect(s.place([unit("w1", { role: ["web"], zone: ["1"] })], HOSTS, NONE)[0]!.hosts).toEqual(["a"]);
    });
    it("a unit no host can take is an error naming what it wants", () => {
      expect(() => s.place([unit("x", { role: ["cache"] })], HOSTS, NONE)).toThrow(UnplaceableUnitError);
      expect(() => s.place([unit("x", { role: ["cache"] })], HOSTS, NONE)).toThrow(
        /x@1.service cannot be placed: no machine satisfies role=cache/,
      );
      expect(() => s.place([unit("x", { role: ["cache"] }, true)], HOSTS, NONE)).toThrow(
        /x@1.service targets no host: it wants role=cache/,
      );
    });
    it("is deterministic", () => {
      const units = [unit("web", { role: ["web"] }), unit("g", {}, true)];
      expect(s.place(units, [...HOSTS].reverse(), NONE)).toEqual(s.place(units, HOSTS, NONE));
    });
    it("Instances=N: N distinct machines; more than there are is an error", () => {
      const two = { ...unit("web", {}), placements: [{ global: false, metadata: { role: ["web"] }, instances: 2 }] };
      expect(s.place([two], HOSTS, NONE)[0]!.hosts).toEqual(["a", "b"]);
      const three = { ...two, placements: [{ global: false, metadata: { role: ["web"] }, instances: 3 }] };
      expect(() => s.place([three], HOSTS, NONE)).toThrow(/for 1 of 3 instances/);
    });
  });
}
