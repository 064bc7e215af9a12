/**
 * Deployment history: one record per deployment at history/<stack>/<generation>.
 */
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { HistoryRecordSchema, decodeJson, type HistoryRecord } from "../../shared/spec.js";

export async function readHistory(consul: Consul, kv: KvLayout, stack: string): Promise<HistoryRecord[]> {
  const entries = await consul.kvList(kv.history(stack));
  return entries
    .map((e) => decodeJson(HistoryRecordSchema, e.key, e.value))
    .sort((a, b) => a.generation - b.generation);
}

export async function writeHistory(consul: Consul, kv: KvLayout, record: HistoryRecord): Promise<void> {
  await consul.kvPut(
    kv.historyEntry(record.stack, record.generation),
    JSON.stringify(HistoryRecordSchema.parse(record)),
  );
}
