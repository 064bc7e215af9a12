/**
 * What every KV store (shared/stores/*) has in common: a document decoded from its entry, or the
 * key and what is wrong with it (an unreadable document is a value the caller reports, not a
 * throw), and the one way a document is CAS-written (optionally only while a session holds a lock).
 * Names across the stores: list* reads a prefix, read* one key, decode* is pure (a listing or a
 * watch answer in, typed documents out), put* writes unconditionally (a document with one writer),
 * write* / delete* are CAS writes. Callers never parse a KV value themselves.
 */
import type { z } from "zod";
import type { Consul, KvEntry, TxnOp } from "../consul.js";
import { InvalidKvDataError, errorText } from "../errors.js";
import { decodeJson } from "../spec.js";

/** A document that could not be read: its key and what is wrong (names the key). */
export interface Unreadable {
  key: string;
  error: string;
}

/** `error` is the whole message (it names the key), `detail` only what is wrong. */
export type Decoded<T> =
  { ok: true; key: string; value: T; index: number } | ({ ok: false; index: number; detail: string } & Unreadable);

/** A document found unreadable at `key` (ModifyIndex `index`) for the reason `detail`. */
export function unreadable(key: string, index: number, detail: string): Decoded<never> {
  return { ok: false, key, index, detail, error: new InvalidKvDataError(key, detail).message };
}

/** Decodes one entry against its schema; never throws. */
export function decodeEntry<T>(
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  entry: Pick<KvEntry, "key" | "value"> & { modifyIndex?: number },
): Decoded<T> {
  const index = entry.modifyIndex ?? 0;
  try {
    return { ok: true, key: entry.key, value: decodeJson(schema, entry.key, entry.value), index };
  } catch (err) {
    return unreadable(entry.key, index, err instanceof InvalidKvDataError ? err.detail : errorText(err));
  }
}

/**
 * Decodes every entry under `prefix` and hands each readable document to `take` (with its key);
 * returns the unreadable ones, and those `take` refuses (it returns why), naming their keys.
 */
export function decodeEach<T>(
  entries: Pick<KvEntry, "key" | "value">[],
  prefix: string,
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  take: (doc: T, key: string) => string | null,
): Unreadable[] {
  const refused: Unreadable[] = [];
  for (const e of entries) {
    if (!e.key.startsWith(prefix)) continue;
    const d = decodeEntry(schema, e);
    const why = d.ok ? take(d.value, d.key) : d.detail;
    if (why !== null) refused.push({ key: e.key, error: new InvalidKvDataError(e.key, why).message });
  }
  return refused;
}

/** The document, or InvalidKvDataError naming its key (for readers that cannot go on without it). */
export function documentOf<T>(d: Decoded<T>): T {
  if (d.ok) return d.value;
  throw new InvalidKvDataError(d.key, d.detail);
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
