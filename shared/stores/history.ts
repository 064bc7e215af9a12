/**
 * The store of deployment history: history/<stack>/<generation>, one HistoryRecord per deployment,
 * written by the controller. An unreadable record is an error naming its key (history decides
 * generations and rollbacks: nothing is guessed).
 */
import type { Consul } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { HistoryRecordSchema, decodeJson, type HistoryRecord } from "../spec.js";
import { NAME_RE } from "../unit-name.js";

/** A stack's records, oldest generation first; throws InvalidKvDataError on an unreadable one. */
export async function listHistory(consul: Consul, kv: KvLayout, stack: string): Promise<HistoryRecord[]> {
  const records = (await consul.kvList(kv.history(stack))).map((e) => decodeJson(HistoryRecordSchema, e.key, e.value));
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

export async function putHistory(consul: Consul, kv: KvLayout, record: HistoryRecord): Promise<void> {
  const valid = HistoryRecordSchema.parse(record);
  await consul.kvPut(kv.historyEntry(valid.stack, valid.generation), JSON.stringify(valid));
}
