/**
 * The fleet backend: fleetd places the units. The controller still only writes KV; the agent
 * holding the scheduler role mirrors each spec into fleet and fleet's /state back into
 * placements/<stack> (agent/fleet-mirror.ts), so hosts, reports and the Consul confirmation are
 * the agents' as with the native backend. fleet schedules like the native engine (least loaded
 * machine among those matching), so the plan's preview is the same function; what counts is
 * where fleet actually put each unit, read back from placements/<stack>.
 *
 * What it refuses: canaries and --max-parallel batches (fleet starts the units itself), Instances=
 * above 1, Socket=, Upgrade=replace and ServicePort=auto or a range (unit-rules.ts). Its unit texts: a chain only Wants= its predecessor and each
 * unit requires the file unit. After a confirmed deploy the original Houston's units adopted for
 * the stack are released, so fleet destroys them (one of a name the deployment has runs on as
 * Houston's). When no scheduler agent reaches fleetd (its error stays the placement document's
 * note for FLEET_UNREACHABLE_MS), the units are unplaced, quoting that error, rather than waited
 * for until --timeout.
 */
import type { Consul } from "../../shared/consul.js";
import { ConfigError, errorText } from "../../shared/errors.js";
import { fleetUnitText } from "../../shared/fleet-mirror.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { isGlobal } from "../../shared/placement.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { decodeOwned, readOwned } from "../../shared/stores/fleet-owned.js";
import { TimeoutError } from "./agent-reports.js";
import { agentsScheduler, waitPlacements } from "./agents.js";
import type { Scheduler } from "./scheduler.js";
import { placedTargets } from "./targets.js";
import { FLEET_UNIT_RULES } from "./unit-rules.js";

/** how long the scheduler agent's fleet error may stand before the rollout fails with it */
export const FLEET_UNREACHABLE_MS = 5000;

/**
 * `releaseAdopted`: hands the original Houston's units adopted for a stack over to the scheduler
 * (which destroys them) and returns their names; the command layer's adopt gives it.
 * `rolloutNote`: the line a rollout starts with (fleet chosen by the config's fleet: endpoint).
 */
export function fleetScheduler(
  consul: Consul,
  kv: KvLayout,
  releaseAdopted: (stack: string) => Promise<string[]> = async () => [],
  rolloutNote: string | null = null,
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
    placesGlobal: true,
    rolloutNote,
    planNote:
      "Scheduler: fleet (the agent holding the scheduler role submits these units to fleetd; fleet picks the machines, → is a preview)",
    unitText: fleetUnitText,
    afterConfirmed: async (stack, wanted) => {
      const released = await releaseAdopted(stack);
      return {
        lines: released.map((name) =>
          wanted.includes(name)
            ? `${name} taken over in place (adopted from the original Houston, now Houston's own)`
            : `Destroying ${name} (adopted from the original Houston)`,
        ),
        destroying: released.filter((name) => !wanted.includes(name)),
      };
    },
    destroyedBy: (names, deadline, progress) => destroyedInFleet(consul, kv, names, deadline, progress),
    adoptedOf: async (stack) =>
      Object.entries((await readOwned(consul, kv)).owned.adopted ?? {})
        .filter(([, s]) => s === stack)
        .map(([name]) => name)
        .sort(),
    placed: async (stack, generation, units, hosts, deadline) => {
      // fleet places asynchronously: wait until every non-global unit shows on a machine; a global
      // unit too while the scheduler agent notes a fleet error (fleet runs it, so nothing does yet:
      // the original's configs are all Global=true)
      const waitingIn = (doc: PlacementDoc) =>
        units.filter((u) => (!isGlobal(u) || doc.note) && !doc.units[u.name]?.length && !doc.unplaced[u.name]);
      // the scheduler agent's fleet error on this generation's document, and since when it stands
      const seen: { noted: { doc: PlacementDoc; note: string; since: number } | null } = { noted: null };
      const pending = (doc: PlacementDoc): string | null => {
        const waiting = waitingIn(doc);
        if (!waiting.length) return null;
        const before = seen.noted;
        seen.noted = doc.note
          ? { doc, note: doc.note, since: before?.note === doc.note ? before.since : Date.now() }
          : null;
        return `fleet has not scheduled ${waiting.map((u) => u.name).join(", ")} yet${doc.note ? ` (${doc.note})` : ""}`;
      };
      // the document is rewritten only when it changes: look again when a standing error is due
      for (;;) {
        const until = Math.min(deadline, (seen.noted?.since ?? Date.now()) + FLEET_UNREACHABLE_MS);
        try {
          return placedTargets(units, await waitPlacements(consul, kv, stack, generation, until, pending), hosts);
        } catch (err) {
          if (!(err instanceof TimeoutError) || Date.now() >= deadline) throw err;
          const standing = seen.noted;
          if (standing && Date.now() - standing.since >= FLEET_UNREACHABLE_MS) {
            const placed = placedTargets(units, standing.doc, hosts);
            // a fleet error ("fleet at URL: …"), or a KV document the agent could not read
            const reason = standing.note.startsWith("fleet at ")
              ? `no scheduler agent reached fleetd for ${FLEET_UNREACHABLE_MS / 1000}s: ${standing.note}`
              : `the scheduler agent has done nothing in fleet for ${FLEET_UNREACHABLE_MS / 1000}s: ${standing.note}`;
            return {
              ...placed,
              unplaced: [...placed.unplaced, ...waitingIn(standing.doc).map((u) => ({ unit: u.name, reason }))],
            };
          }
        }
      }
    },
  };
}

/**
 * Follows fleet/owned (blocking queries) until none of `names` is listed as Houston's any more: the
 * scheduler agent forgets a unit there once fleet has accepted its destruction. Returns those still
 * listed at `deadline`; an unreadable document counts as pending (said through `progress`).
 */
async function destroyedInFleet(
  consul: Consul,
  kv: KvLayout,
  names: readonly string[],
  deadline: number,
  progress: (pending: string[], problem: string | null) => void,
): Promise<string[]> {
  let pending = [...names];
  if (pending.length === 0) return pending;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), Math.max(0, deadline - Date.now()));
  try {
    for await (const { entries } of consul.watchPrefix(kv.fleet, { signal: ac.signal, wait: "30s" })) {
      const e = entries.find((x) => x.key === kv.fleetOwned);
      let problem: string | null = null;
      try {
        const { units } = decodeOwned(e);
        pending = names.filter((n) => units[n] !== undefined);
      } catch (err) {
        pending = [...names];
        problem = errorText(err);
      }
      if (pending.length === 0) return pending;
      progress(pending, problem);
    }
    return pending;
  } finally {
    clearTimeout(timer);
  }
}
