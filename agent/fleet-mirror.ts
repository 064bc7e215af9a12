/**
 * The fleet side of the scheduler role: while this agent holds the role, it mirrors the accepted
 * (signature-checked) specs of fleet-scheduled stacks into fleetd through API v1, and fleet's
 * /state back into placements/<stack>. Decisions are shared/fleet-mirror.ts; this is the I/O.
 * Every KV write checks the role's session, so a deposed holder cannot write.
 * fleet errors become the placement document's note (the rollout shows it) and the role's
 * lastError (/status); transient ones (503, a dropped connection) are retried on the next pass.
 * So does an unreadable fleet/owned (every agent token may write it): nothing is done in fleet, and
 * the role's placing of the other stacks goes on.
 */
import type { Consul } from "../shared/consul.js";
import { ConsulPermissionError, InvalidKvDataError, errorText } from "../shared/errors.js";
import { FleetUnavailableError, type Fleet } from "../shared/fleet.js";
import { desiredFleetUnits, mirrorSteps, placementsFromState } from "../shared/fleet-mirror.js";
import type { KvLayout } from "../shared/kv-layout.js";
import type { PlacementDoc } from "../shared/schedule.js";
import type { StackSpec } from "../shared/spec.js";
import {
  forgetDestroyed,
  readOwned,
  recordCreating,
  writeOwned,
  type FleetOwned,
} from "../shared/stores/fleet-owned.js";

/** how often fleet's /state is read while something is on its way, and when all is settled */
const POLL_BUSY_MS = 1000;
const POLL_IDLE_MS = 5000;

export interface MirrorResult {
  docs: Map<string, PlacementDoc>;
  /** when to look at fleet again (null: nothing of fleet's to follow) */
  pollMs: number | null;
  /** false: a KV write failed its session check (the role is lost) or its CAS (try again) */
  ok: boolean;
}

export class FleetMirror {
  lastError: string | null = null;

  constructor(private readonly deps: { consul: Consul; kv: KvLayout; fleet: Fleet; log: (m: string) => void }) {}

  /**
   * One pass over the fleet-scheduled specs (all specs are passed, so that units of removed
   * stacks are destroyed). `nodeOfMachine`: machine ID → node, from the agents' records.
   */
  async pass(
    specs: StackSpec[],
    session: string,
    nodeOfMachine: ReadonlyMap<string, string>,
    previous: ReadonlyMap<string, PlacementDoc>,
    scheduler: string,
  ): Promise<MirrorResult> {
    const { consul, kv, fleet } = this.deps;
    const desired = desiredFleetUnits(specs);
    const fleetStacks = specs.filter((s) => s.scheduler === "fleet");
    let owned: FleetOwned;
    let index: number;
    try {
      ({ owned, index } = await readOwned(consul, kv));
    } catch (err) {
      // an agent token made before fleet/ was in the agent policy: fine while no stack uses fleet
      if (desired.length === 0 && err instanceof ConsulPermissionError)
        return { docs: new Map(), pollMs: null, ok: true };
      // unreadable (any agent token may write fleet/): nothing of fleet's is done, the fleet
      // stacks keep their placements with a note, and the other stacks are placed as ever
      if (err instanceof InvalidKvDataError)
        return this.stuck(`${errorText(err)} (nothing done in fleet)`, fleetStacks, previous, scheduler);
      throw err;
    }
    if (desired.length === 0 && Object.keys(owned.units).length === 0)
      return { docs: new Map(), pollMs: null, ok: true };
    const problems = new Map<string, string>();
    let busy = false;
    try {
      const adopted = owned.adopted ?? {};
      const steps = mirrorSteps(
        desired,
        await fleet.units(),
        new Map(Object.entries(owned.units)),
        new Map(Object.entries(adopted)),
      );
      // recorded as Houston's before fleet has them, so that a crash in between never leaks one
      const creating = steps.filter((s) => s.kind === "create" && owned.units[s.name] === undefined);
      if (creating.length) {
        const next = recordCreating(owned, creating);
        const written = await writeOwned(consul, kv, next, index, session);
        if (written === null) return { docs: new Map(), pollMs: 0, ok: false };
        owned = next;
        index = written;
      }
      const destroyed: string[] = [];
      for (const s of steps) {
        busy ||= s.kind !== "foreign"; // a foreign unit in the way waits for a person, not for fleet
        if (s.kind === "foreign") {
          problems.set(s.name, s.reason);
          continue;
        }
        try {
          if (s.kind === "destroy") {
            await fleet.destroyUnit(s.name);
            destroyed.push(s.name);
            this.deps.log(`fleet: destroyed ${s.name}`);
          } else {
            await fleet.putUnit(s.name, s.options, "launched");
            this.deps.log(`fleet: ${s.kind === "create" ? "submitted" : "launched"} ${s.name}`);
          }
        } catch (err) {
          if (err instanceof FleetUnavailableError) throw err;
          problems.set(s.name, errorText(err));
        }
      }
      if (
        destroyed.length &&
        (await writeOwned(consul, kv, forgetDestroyed(owned, destroyed), index, session)) === null
      )
        return { docs: new Map(), pollMs: 0, ok: false };
      const states = await fleet.states();
      const active = new Set(states.filter((s) => s.systemdActiveState === "active").map((s) => s.name));
      const gone = new Set(destroyed);
      busy ||= desired.some((d) => !active.has(d.name)) || states.some((s) => gone.has(s.name));
      this.lastError = null;
      const live = new Set((await fleet.machines()).flatMap((m) => nodeOfMachine.get(m.id) ?? []));
      const docs = placementsFromState(fleetStacks, states, nodeOfMachine, problems, scheduler, now(), previous, live);
      return { docs, pollMs: busy ? POLL_BUSY_MS : POLL_IDLE_MS, ok: true };
    } catch (err) {
      const note = `fleet at ${fleet.endpoint}: ${errorText(err)}${err instanceof FleetUnavailableError ? " (retrying)" : ""}`;
      return this.stuck(note, fleetStacks, previous, scheduler);
    }
  }

  /** Nothing could be done in fleet: what fleet said before stays in force; the note tells the rollout why nothing moves. */
  private stuck(
    note: string,
    fleetStacks: StackSpec[],
    previous: ReadonlyMap<string, PlacementDoc>,
    scheduler: string,
  ): MirrorResult {
    if (this.lastError !== note) this.deps.log(note);
    this.lastError = note;
    const docs = new Map<string, PlacementDoc>();
    for (const s of fleetStacks) {
      const prev = previous.get(s.stack);
      const base = prev && prev.generation === s.generation ? prev : undefined;
      docs.set(s.stack, {
        schema: 1,
        stack: s.stack,
        generation: s.generation,
        units: base?.units ?? {},
        unplaced: base?.unplaced ?? {},
        moves: base?.moves ?? [],
        scheduler: `fleet (mirrored by ${scheduler})`,
        updatedAt: base?.updatedAt ?? now(),
        note,
      });
    }
    return { docs, pollMs: POLL_BUSY_MS * 2, ok: true };
  }
}

function now(): string {
  return new Date().toISOString();
}
