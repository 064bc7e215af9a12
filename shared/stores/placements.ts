/**
 * The store of placements: placements/<stack>, written by the agent holding the scheduler role
 * (only while its session holds scheduler/leader), read by every agent and the controller.
 * A document must name the stack of its key. An unreadable one is returned with its
 * ModifyIndex: the scheduler replaces it (CAS on that index), readers ignore it or keep their
 * last good one.
 */
import type { Consul, KvEntry } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { PlacementDocSchema, type PlacementDoc } from "../schedule.js";
import { casDelete, casWrite, decodeEntry, encodeDocument, unreadable, type Decoded } from "./document.js";

/** A stack's placement document as read: decoded, or why not; with the index to CAS on. */
export type PlacementEntry = Decoded<PlacementDoc> & { stack: string };

/** Decodes one entry of placements/<stack>; a document about another stack is unreadable. */
export function decodePlacement(stack: string, e: Pick<KvEntry, "key" | "value" | "modifyIndex">): PlacementEntry {
  const d = decodeEntry(PlacementDocSchema, e);
  return {
    ...(d.ok && d.value.stack !== stack ? unreadable(e.key, e.modifyIndex, `is about stack ${d.value.stack}`) : d),
    stack,
  };
}

/** Every placement entry of a listing of placements/ (a watch answer or kvList), by stack. */
export function decodePlacements(entries: KvEntry[], kv: KvLayout): Map<string, PlacementEntry> {
  const out = new Map<string, PlacementEntry>();
  for (const e of entries) {
    const stack = kv.stackOfPlacementKey(e.key);
    if (stack) out.set(stack, decodePlacement(stack, e));
  }
  return out;
}

/** The readable documents of decodePlacements, by stack. */
export function readablePlacements(entries: ReadonlyMap<string, PlacementEntry>): Map<string, PlacementDoc> {
  return new Map([...entries].flatMap(([s, p]) => (p.ok ? [[s, p.value] as const] : [])));
}

export async function listPlacements(consul: Consul, kv: KvLayout): Promise<Map<string, PlacementEntry>> {
  return decodePlacements(await consul.kvList(kv.placements), kv);
}

/**
 * Writes a stack's document if its key is still at `index` (0: absent) and `session` still holds
 * the scheduler role. Returns false when either check failed (nothing written).
 */
export async function writePlacement(
  consul: Consul,
  kv: KvLayout,
  doc: PlacementDoc,
  index: number,
  session: string,
): Promise<boolean> {
  const guard = { lockKey: kv.schedulerLeader, session };
  return (await casWrite(consul, kv.placement(doc.stack), encodeDocument(doc, true), index, guard)) !== null;
}

/** Deletes a stack's document under the same two checks as writePlacement. */
export async function deletePlacement(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  index: number,
  session: string,
): Promise<boolean> {
  return casDelete(consul, kv.placement(stack), index, { lockKey: kv.schedulerLeader, session });
}
