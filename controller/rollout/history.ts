/**
 * Deployment history: one record per deployment at history/<stack>/<generation>.
 */
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { HistoryRecordSchema, decodeJson, type HistoryRecord, type StackSpec } from "../../shared/spec.js";

/**
 * The one rule for the next spec generation: above the live spec and everything history saw, so
 * generations only go forward (agents that trust signed specs refuse to go back).
 */
export function nextGeneration(
  live: Pick<StackSpec, "generation"> | null,
  history: Pick<HistoryRecord, "generation" | "finalGeneration">[],
): number {
  return Math.max(live?.generation ?? 0, ...history.map((h) => Math.max(h.generation, h.finalGeneration ?? 0))) + 1;
}

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
