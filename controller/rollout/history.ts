/**
 * The one rule for a stack's next spec generation (pure); history records themselves are read
 * (with signing on, only those that verify: controller/rollout/read-back.ts) and written through
 * shared/stores/history.ts.
 */
import { HoustonError } from "../../shared/errors.js";
import type { HistoryRecord, StackSpec } from "../../shared/spec.js";

/** The next generation would not be a safe integer: generations would stop increasing. */
export class GenerationOverflowError extends HoustonError {}

/**
 * Above the live spec and everything history saw, so generations only go forward (agents that
 * trust signed specs accept only a greater one). The stores accept only safe integers; one so
 * large that the next is not safe (it would equal it) is refused rather than frozen.
 */
export function nextGeneration(
  live: Pick<StackSpec, "generation"> | null,
  history: Pick<HistoryRecord, "generation" | "finalGeneration">[],
): number {
  const seen = Math.max(live?.generation ?? 0, ...history.map((h) => Math.max(h.generation, h.finalGeneration ?? 0)));
  const next = seen + 1;
  if (!Number.isSafeInteger(next) || next <= seen)
    throw new GenerationOverflowError(
      `the next generation after ${seen} is not a safe integer; a live spec or history record holds an absurd generation: check them (houston history) and remove the record that holds it`,
    );
  return next;
}
