/**
 * The fleet backend: fleetd places the units. The controller still only writes KV; the agent
 * holding the scheduler role mirrors each spec into fleet and fleet's /state back into
 * placements/<stack> (agent/fleet-mirror.ts), so hosts, reports and the Consul confirmation are
 * the agents' as with the native backend. fleet schedules like the native engine (least loaded
 * machine among those matching), so the plan's preview is the same function; what counts is
 * where fleet actually put each unit, read back from placements/<stack>.
 *
 * What it refuses: canaries and --max-parallel batches (fleet starts the units itself), Instances=
 * above 1 and Socket= (unit-rules.ts). Its unit texts: a chain only Wants= its predecessor and each
 * unit requires the file unit. After a confirmed deploy the original Houston's units adopted for
 * the stack are released, so fleet destroys them (one of a name the deployment has runs on as Houston's).
 */
import type { Consul } from "../../shared/consul.js";
import { ConfigError } from "../../shared/errors.js";
import { fleetUnitText } from "../../shared/fleet-mirror.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { isGlobal } from "../../shared/placement.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { agentsScheduler, waitPlacements } from "./agents.js";
import type { Scheduler } from "./scheduler.js";
import { placedTargets } from "./targets.js";
import { FLEET_UNIT_RULES } from "./unit-rules.js";

/**
 * `releaseAdopted`: hands the original Houston's units adopted for a stack over to the scheduler
 * (which destroys them) and returns their names; the command layer's adopt gives it.
 */
export function fleetScheduler(
  consul: Consul,
  kv: KvLayout,
  releaseAdopted: (stack: string) => Promise<string[]> = async () => [],
): Scheduler {
  // hosts, view, preview and reports are the agents' as with the native backend; only where a
  // generation's units went is fleet's to say
  return {
    ...agentsScheduler(consul, kv),
    name: "fleet",
    checkRollout: ({ canary, maxParallel }) => {
      if (canary > 0 || maxParallel !== null)
        throw new ConfigError(
          canary > 0 ? "--canary" : "--max-parallel",
          "fleet places and starts the units itself: canaries and batches need the agents scheduler",
        );
    },
    unitRules: FLEET_UNIT_RULES,
    specFields: { scheduler: "fleet" },
    planNote:
      "Scheduler: fleet (the agent holding the scheduler role submits these units to fleetd; fleet picks the machines, → is a preview)",
    unitText: fleetUnitText,
    afterConfirmed: async (stack, wanted) =>
      (await releaseAdopted(stack)).map((name) =>
        wanted.includes(name)
          ? `${name} taken over in place (adopted from the original Houston, now Houston's own)`
          : `Destroying ${name} (adopted from the original Houston)`,
      ),
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
