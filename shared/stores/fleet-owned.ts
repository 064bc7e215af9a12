/**
 * The store of fleet/owned: the fleet units Houston created (unit → stack), and `adopted`, the
 * original Houston's units taken over by `houston adopt` (replaced by a deploy of their stack,
 * destroyed only once such a deploy is confirmed, then moved to `units`). Only units recorded
 * here are ever replaced or destroyed in fleet. What files a deploy may take over is not here:
 * every agent token may write fleet/ (the scheduler role), see shared/stores/adopted.ts.
 * Its transitions are pure; every write is one protocol: read it with its ModifyIndex, apply a
 * transition, CAS-write at that index (the scheduler's writes also check it still holds the role).
 * An unreadable document throws InvalidKvDataError: nothing may be guessed about what Houston owns.
 */
import { z } from "zod";
import type { Consul, KvEntry } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { decodeJson } from "../spec.js";
import { casWrite, encodeDocument } from "./document.js";

export const FleetOwnedSchema = z.object({
  schema: z.literal(1),
  units: z.record(z.string()),
  adopted: z.record(z.string()).optional(),
  /**
   * written by Houston before the adopted files moved to stacks/<stack>/adopted (shared/stores/adopted.ts):
   * never read for a takeover (any agent token may write fleet/), only dropped on release
   */
  adoptedFiles: z.record(z.array(z.string())).optional(),
});
export type FleetOwned = z.infer<typeof FleetOwnedSchema>;

/** What fleet/owned says while it is absent: nothing is Houston's. */
export const NOTHING_OWNED: FleetOwned = { schema: 1, units: {} };

export interface OwnedUnit {
  name: string;
  stack: string;
}

/**
 * `houston adopt`: the original's units become adopted (kept until a deploy of their stack is
 * confirmed). The files its archives wrote are recorded apart, where only the controller writes
 * (shared/stores/adopted.ts).
 */
export function adoptUnits(owned: FleetOwned, units: OwnedUnit[]): FleetOwned {
  return { ...owned, adopted: { ...owned.adopted, ...Object.fromEntries(units.map((u) => [u.name, u.stack])) } };
}

/**
 * Before fleet creates units: they are recorded as Houston's (so a crash in between never leaks
 * one). An adopted unit of the same name stays adopted too: a failed deploy never destroys it
 * (mirrorSteps destroys no adopted unit), only a confirmed one releases it.
 */
export function recordCreating(owned: FleetOwned, units: OwnedUnit[]): FleetOwned {
  return { ...owned, units: { ...owned.units, ...Object.fromEntries(units.map((u) => [u.name, u.stack])) } };
}

/** After fleet destroyed units: they are no longer Houston's. */
export function forgetDestroyed(owned: FleetOwned, names: string[]): FleetOwned {
  const gone = new Set(names);
  return { ...owned, units: Object.fromEntries(Object.entries(owned.units).filter(([n]) => !gone.has(n))) };
}

/**
 * After a confirmed deploy of `stack`: its adopted units become ordinary Houston units (the
 * scheduler then destroys those no spec wants; one the deployment shares the name of runs on as
 * Houston's); an old version's adoptedFiles of the stack are dropped.
 * `released`: the units' names; null when there is nothing to release.
 */
export function releaseAdopted(owned: FleetOwned, stack: string): { next: FleetOwned; released: string[] } | null {
  const mine = Object.entries(owned.adopted ?? {}).filter(([, s]) => s === stack);
  if (mine.length === 0 && owned.adoptedFiles?.[stack] === undefined) return null;
  const { [stack]: _done, ...adoptedFiles } = owned.adoptedFiles ?? {};
  const next: FleetOwned = {
    ...owned,
    units: { ...owned.units, ...Object.fromEntries(mine) },
    adopted: Object.fromEntries(Object.entries(owned.adopted ?? {}).filter(([, s]) => s !== stack)),
    adoptedFiles,
  };
  if (Object.keys(adoptedFiles).length === 0) delete next.adoptedFiles;
  return { next, released: mine.map(([n]) => n) };
}

/** The document as read from its entry (nothing owned when absent); throws when unreadable. */
export function decodeOwned(e: Pick<KvEntry, "key" | "value"> | null | undefined): FleetOwned {
  return e ? decodeJson(FleetOwnedSchema, e.key, e.value) : NOTHING_OWNED;
}

/** The document and its ModifyIndex (0 and nothing owned when absent); throws when unreadable. */
export async function readOwned(consul: Consul, kv: KvLayout): Promise<{ owned: FleetOwned; index: number }> {
  const e = await consul.kvGet(kv.fleetOwned);
  return { owned: decodeOwned(e), index: e?.modifyIndex ?? 0 };
}

/**
 * Writes the document if it is still at `index` and, with `session`, while that session holds the
 * scheduler role. Returns the new ModifyIndex, or null when a check failed (nothing written).
 */
export async function writeOwned(
  consul: Consul,
  kv: KvLayout,
  owned: FleetOwned,
  index: number,
  session?: string,
): Promise<number | null> {
  const guard = session === undefined ? undefined : { lockKey: kv.schedulerLeader, session };
  return casWrite(consul, kv.fleetOwned, encodeDocument(FleetOwnedSchema.parse(owned), true), index, guard);
}

/**
 * Reads, applies `change` (null: nothing to write) and CAS-writes, reading again when another
 * writer got there first, at most `attempts` times. Returns the document as read for the change
 * that was written (or needed none); null when every attempt lost its CAS.
 */
export async function updateOwned(
  consul: Consul,
  kv: KvLayout,
  change: (owned: FleetOwned) => FleetOwned | null,
  attempts: number,
): Promise<FleetOwned | null> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const { owned, index } = await readOwned(consul, kv);
    const next = change(owned);
    if (next === null || (await writeOwned(consul, kv, next, index)) !== null) return owned;
  }
  return null;
}
