/**
 * The store of deployment history: history/<stack>/<generation>, one HistoryRecord per deployment,
 * written by the controller. An unreadable record is an error naming its key (history decides
 * generations and rollbacks: nothing is guessed).
 */
import type { Consul } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { HistoryRecordSchema, decodeJson, type HistoryRecord } from "../spec.js";

/** A stack's records, oldest generation first; throws InvalidKvDataError on an unreadable one. */
export async function listHistory(consul: Consul, kv: KvLayout, stack: string): Promise<HistoryRecord[]> {
  const records = (await consul.kvList(kv.history(stack))).map((e) => decodeJson(HistoryRecordSchema, e.key, e.value));
  return records.sort((a, b) => a.generation - b.generation);
}

export async function putHistory(consul: Consul, kv: KvLayout, record: HistoryRecord): Promise<void> {
  const valid = HistoryRecordSchema.parse(record);
  await consul.kvPut(kv.historyEntry(valid.stack, valid.generation), JSON.stringify(valid));
}
