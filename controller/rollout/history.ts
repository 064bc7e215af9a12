/**
 * The one rule for a stack's next spec generation (pure); history records themselves are read
 * and written through shared/stores/history.ts.
 */
import type { HistoryRecord, StackSpec } from "../../shared/spec.js";

/**
 * Above the live spec and everything history saw, so generations only go forward (agents that
 * trust signed specs refuse to go back).
 */
export function nextGeneration(
  live: Pick<StackSpec, "generation"> | null,
  history: Pick<HistoryRecord, "generation" | "finalGeneration">[],
): number {
  return Math.max(live?.generation ?? 0, ...history.map((h) => Math.max(h.generation, h.finalGeneration ?? 0))) + 1;
}
