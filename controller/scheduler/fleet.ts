/**
 * The fleet backend: fleetd places the units. The controller still only writes KV; the agent
 * holding the scheduler role mirrors each spec into fleet and fleet's /state back into
 * placements/<stack> (agent/fleet-mirror.ts), so hosts, reports and the Consul confirmation are
 * the agents' as with the native backend. fleet schedules like the native engine (least loaded
 * machine among those matching), so the plan's preview is the same function; what counts is
 * where fleet actually put each unit, read back from placements/<stack>.
 */
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { isGlobal } from "../../shared/placement.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { agentsScheduler, waitPlacements } from "./agents.js";
import type { Scheduler } from "./scheduler.js";
import { placedTargets } from "./targets.js";

export function fleetScheduler(consul: Consul, kv: KvLayout): Scheduler {
  // hosts, view, preview and reports are the agents' as with the native backend; only where a
  // generation's units went is fleet's to say
  return {
    ...agentsScheduler(consul, kv),
    name: "fleet",
    placed: async (stack, generation, units, hosts, deadline) => {
      // fleet places asynchronously: wait until every non-global unit shows on a machine
      const pending = (doc: PlacementDoc): string | null => {
        const waiting = units.filter((u) => !isGlobal(u) && !doc.units[u.name]?.length && !doc.unplaced[u.name]);
        if (!waiting.length) return null;
        return `fleet has not scheduled ${waiting.map((u) => u.name).join(", ")} yet${doc.note ? ` (${doc.note})` : ""}`;
      };
      return placedTargets(units, await waitPlacements(consul, kv, stack, generation, deadline, pending), hosts);
    },
  };
}
