/**
 * What every KV store (shared/stores/*) has in common: a document decoded from its entry, or the
 * key and what is wrong with it (an unreadable document is a value the caller reports, not a
 * throw), and the one way a document is CAS-written (optionally only while a session holds a lock).
 * Names across the stores: list* reads a prefix, read* one key, decode* is pure (a listing or a
 * watch answer in, typed documents out), put* writes one's own document unconditionally,
 * write* / delete* are CAS writes. Callers never parse a KV value themselves.
 */
import type { z } from "zod";
import type { Consul, KvEntry, TxnOp } from "../consul.js";
import { errorText } from "../errors.js";
import { decodeJson } from "../spec.js";

/** A document that could not be read: its key and what is wrong (names the key). */
export interface Unreadable {
  key: string;
  error: string;
}

export type Decoded<T> =
  { ok: true; key: string; value: T; index: number } | ({ ok: false; index: number } & Unreadable);

/** Decodes one entry against its schema; never throws. */
export function decodeEntry<T>(
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  entry: Pick<KvEntry, "key" | "value"> & { modifyIndex?: number },
): Decoded<T> {
  const index = entry.modifyIndex ?? 0;
  try {
    return { ok: true, key: entry.key, value: decodeJson(schema, entry.key, entry.value), index };
  } catch (err) {
    return { ok: false, key: entry.key, error: errorText(err), index };
  }
}

/** How a document is written: pretty-printed where operators read it in the Consul UI. */
export function encodeDocument(doc: unknown, pretty: boolean): string {
  return pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc);
}

/**
 * Writes `value` at `key` only if its ModifyIndex is still `index` (0: only if absent) and, with
 * `session`, only while that session holds `lockKey`. Returns the new ModifyIndex, or null when
 * the CAS or the session check failed (nothing was written).
 */
export async function casWrite(
  consul: Consul,
  key: string,
  value: string | Buffer,
  index: number,
  guard?: { lockKey: string; session: string },
): Promise<number | null> {
  const ops: TxnOp[] = guard ? [{ verb: "check-session", key: guard.lockKey, session: guard.session }] : [];
  ops.push({ verb: "cas", key, value, index });
  const res = await consul.txn(ops);
  return res.ok ? (res.indexes[ops.length - 1] ?? index) : null;
}

/** Deletes `key` only if its ModifyIndex is still `index` (and, with `guard`, while the session holds the lock). */
export async function casDelete(
  consul: Consul,
  key: string,
  index: number,
  guard?: { lockKey: string; session: string },
): Promise<boolean> {
  const ops: TxnOp[] = guard ? [{ verb: "check-session", key: guard.lockKey, session: guard.session }] : [];
  ops.push({ verb: "delete-cas", key, index });
  return (await consul.txn(ops)).ok;
}
