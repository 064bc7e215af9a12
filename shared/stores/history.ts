/**
 * The store of deployment history: history/<stack>/<generation>, one HistoryRecord per deployment,
 * written by the controller, signed (history/<stack>/<generation>/signature) when it has a
 * signing key. listHistory reads every record (an unreadable one is an error naming its key: what
 * `history` shows is not guessed); listVerifiedHistory is what decides generations and rollbacks
 * with signing on: only records whose signature verifies, the others returned as refused.
 */
import type { KeyObject } from "node:crypto";
import type { Consul, KvEntry } from "../consul.js";
import { ConsulError, InvalidKvDataError } from "../errors.js";
import type { KvLayout } from "../kv-layout.js";
import { RecordSignatureSchema, recordSignatureProblem, signRecord } from "../record-signing.js";
import type { SpecSigner } from "../signing.js";
import { HistoryRecordSchema, decodeJson, type HistoryRecord } from "../spec.js";
import { decodeEntry, type Unreadable } from "./document.js";
import { NAME_RE } from "../unit-name.js";

/** The record entries of a stack's history listing, each with its signature's entry, if any. */
function recordEntries(entries: KvEntry[]): { entry: KvEntry; signature: KvEntry | null }[] {
  const byKey = new Map(entries.map((e) => [e.key, e]));
  return entries
    .filter((e) => !e.key.endsWith("/signature"))
    .map((entry) => ({ entry, signature: byKey.get(`${entry.key}/signature`) ?? null }));
}

/** A stack's records, oldest generation first; throws InvalidKvDataError on an unreadable one. */
export async function listHistory(consul: Consul, kv: KvLayout, stack: string): Promise<HistoryRecord[]> {
  const records = recordEntries(await consul.kvList(kv.history(stack))).map(({ entry: e }) =>
    decodeJson(HistoryRecordSchema, e.key, e.value),
  );
  return records.sort((a, b) => a.generation - b.generation);
}

/** The stacks with a history (history/<stack>/ folders whose name is a stack name), sorted. */
export async function historyStacks(consul: Consul, kv: KvLayout): Promise<string[]> {
  const root = kv.historyRoot;
  return (await consul.kvKeys(root, "/"))
    .filter((k) => k.endsWith("/"))
    .map((k) => k.slice(root.length, -1))
    .filter((s) => NAME_RE.test(s))
    .sort();
}

export interface VerifiedHistory {
  /** the records whose signature verifies, oldest generation first */
  records: HistoryRecord[];
  /** the others (unreadable, unsigned, tampered, signed by another key), naming their keys */
  refused: (Unreadable & { record: HistoryRecord | null })[];
}

/**
 * A stack's records checked against the trusted keys: a record counts only when it is readable,
 * at the key of its own stack and generation, and signed for that key and cluster.
 */
export async function listVerifiedHistory(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  trusted: Map<string, KeyObject>,
  /** the verifier's cluster name ("" none): a record signed for another cluster does not count */
  cluster: string,
): Promise<VerifiedHistory> {
  const out: VerifiedHistory = { records: [], refused: [] };
  for (const { entry, signature } of recordEntries(await consul.kvList(kv.history(stack)))) {
    const d = decodeEntry(HistoryRecordSchema, entry);
    if (!d.ok) {
      out.refused.push({ key: d.key, error: d.error, record: null });
      continue;
    }
    const refuse = (detail: string): void => {
      out.refused.push({ key: entry.key, error: new InvalidKvDataError(entry.key, detail).message, record: d.value });
    };
    if (d.value.stack !== stack || kv.historyEntry(stack, d.value.generation) !== entry.key) {
      refuse(`names ${d.value.stack} generation ${d.value.generation}`);
      continue;
    }
    const sig = signature ? decodeEntry(RecordSignatureSchema, signature) : null;
    if (sig && !sig.ok) {
      refuse(sig.error);
      continue;
    }
    const problem = recordSignatureProblem(entry.key, entry.value, sig?.value ?? null, trusted, cluster);
    if (problem) refuse(problem);
    else out.records.push(d.value);
  }
  out.records.sort((a, b) => a.generation - b.generation);
  return out;
}

/** Writes the record, signed when there is a signer (record and signature in one transaction). */
export async function putHistory(
  consul: Consul,
  kv: KvLayout,
  record: HistoryRecord,
  signer: SpecSigner | null = null,
): Promise<void> {
  const valid = HistoryRecordSchema.parse(record);
  const key = kv.historyEntry(valid.stack, valid.generation);
  const bytes = Buffer.from(JSON.stringify(valid));
  const sigKey = kv.historySignature(valid.stack, valid.generation);
  const res = await consul.txn([
    { verb: "set", key, value: bytes },
    signer
      ? { verb: "set", key: sigKey, value: JSON.stringify(signRecord(signer, key, bytes)) }
      : { verb: "delete", key: sigKey },
  ]);
  if (!res.ok) throw new ConsulError(`writing ${key}: ${res.errors.join("; ")}`);
}
