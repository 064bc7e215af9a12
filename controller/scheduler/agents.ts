/**
 * The native backend: Houston's agents. Hosts are the agents registered under agents/ with their
 * Consul health; global units go to every matching host (each agent decides), other units where
 * the agent holding the scheduler role placed them (placements/<stack>, shared/schedule.ts);
 * reports are the agents' status/<node>/<stack> documents. It refuses nothing: canaries, batches,
 * Instances=, Socket= and Requires= chains are all the agents'; nothing happens after confirmation.
 */
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { listHosts } from "../../shared/stores/agents.js";
import { decodePlacement, listPlacements, readablePlacements } from "../../shared/stores/placements.js";
import { listReports } from "../../shared/stores/reports.js";
import { listSpecs } from "../../shared/stores/specs.js";
import { TimeoutError, followReports } from "./agent-reports.js";
import type { Scheduler } from "./scheduler.js";
import { placedTargets, previewTargets, type PlacementView } from "./targets.js";
import { AGENTS_UNIT_RULES } from "./unit-rules.js";

export function agentsScheduler(consul: Consul, kv: KvLayout): Scheduler {
  return {
    name: "agents",
    checkRollout: () => undefined,
    unitRules: AGENTS_UNIT_RULES,
    specFields: {},
    placesGlobal: false,
    planNote: null,
    rolloutNote: null,
    unitText: (_stack, unit) => unit.text,
    afterConfirmed: async () => ({ lines: [], destroying: [] }),
    destroyedBy: async () => [],
    adoptedOf: async () => [],
    hosts: () => listHosts(consul, kv),
    view: () => readView(consul, kv),
    place: previewTargets,
    placed: async (stack, generation, units, hosts, deadline) =>
      placedTargets(units, await waitPlacements(consul, kv, stack, generation, deadline, () => null), hosts),
    follow: (stack, deadline, check, describe, signal) =>
      followReports(consul, kv, stack, deadline, check, describe, signal),
    reports: async () => (await listReports(consul, kv)).reports,
  };
}

/** Live specs and placement documents (unreadable ones left out: status reports them, the scheduler replaces them). */
export async function readView(consul: Consul, kv: KvLayout): Promise<PlacementView> {
  const { specs } = await listSpecs(consul, kv);
  return { specs, placements: readablePlacements(await listPlacements(consul, kv)) };
}

/**
 * Follows placements/<stack> until the scheduler has placed `generation` (or later) and `pending`
 * (what is still missing from such a document, or null) says nothing is.
 */
export async function waitPlacements(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  generation: number,
  deadline: number,
  pending: (doc: PlacementDoc) => string | null,
): Promise<PlacementDoc> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), Math.max(0, deadline - Date.now()));
  const key = kv.placement(stack);
  let last = "no placements written yet";
  try {
    for await (const { entries } of consul.watchPrefix(kv.placements, { signal: ac.signal, wait: "30s" })) {
      const e = entries.find((x) => x.key === key);
      if (!e) continue;
      const d = decodePlacement(stack, e);
      if (!d.ok) {
        last = d.error;
        continue;
      }
      const doc = d.value;
      const missing = doc.generation >= generation ? pending(doc) : `placements are for generation ${doc.generation}`;
      if (missing === null) return doc;
      last = missing;
    }
    throw new TimeoutError(
      `the scheduler has not placed generation ${generation} of ${stack} (${last}); is an agent holding ${kv.schedulerLeader}? see houston nodes`,
    );
  } finally {
    clearTimeout(timer);
  }
}
