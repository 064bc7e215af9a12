/**
 * Deployment history: one record per deployment at history/<stack>/<generation>.
 */
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { HistoryRecordSchema, decodeJson, type HistoryRecord } from "../../shared/spec.js";

/** Successful deployments whose archives stay in KV, so rollback to them works. */
export const KEEP_ARCHIVES_OF_LAST = 5;

export async function readHistory(consul: Consul, kv: KvLayout, stack: string): Promise<HistoryRecord[]> {
  const entries = await consul.kvList(kv.history(stack));
  return entries.map((e) => decodeJson(HistoryRecordSchema, e.key, e.value)).sort((a, b) => a.generation - b.generation);
}

export async function writeHistory(consul: Consul, kv: KvLayout, record: HistoryRecord): Promise<void> {
  await consul.kvPut(kv.historyEntry(record.stack, record.generation), JSON.stringify(HistoryRecordSchema.parse(record)));
}

/** Archive digests kept for rollback: those of the last KEEP_ARCHIVES_OF_LAST successful deployments. */
export function archivesKeptByHistory(history: HistoryRecord[]): Set<string> {
  const ok = history.filter((h) => h.result === "success").slice(-KEEP_ARCHIVES_OF_LAST);
  return new Set(ok.flatMap((h) => h.units.flatMap((u) => (u.archive ? [u.archive] : []))));
}
