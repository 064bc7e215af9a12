/**
 * History's rules (pure): a stack's next spec generation; which successful deployment failed after
 * it stood its window (its units failed later in the live generation), and which ones rollback may
 * target. Records themselves are read (with signing on, only those that verify:
 * controller/rollout/read-back.ts) and written through shared/stores/history.ts.
 */
import { HoustonError } from "../../shared/errors.js";
import type { HistoryRecord, StackSpec, StatusReport } from "../../shared/spec.js";
import { reportIsCurrent } from "./progress.js";

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

/**
 * The live deployment's record when one of its units has failed (or is restarting) since: the
 * success whose final generation is live, and the first unit that failed on a host whose report
 * is of that generation. Null when nothing failed, nothing is live, or it is marked already.
 */
export function laterFailure(
  history: HistoryRecord[],
  live: Pick<StackSpec, "generation"> | null,
  reports: ReadonlyMap<string, StatusReport>,
): { record: HistoryRecord; unit: string; host: string; reason: string } | null {
  if (!live) return null;
  const record = history.filter((h) => h.result === "success" && h.finalGeneration === live.generation).at(-1);
  if (!record || record.failedLater) return null;
  const names = new Set(record.units.map((u) => u.name));
  for (const [host, r] of [...reports].sort(([a], [b]) => a.localeCompare(b))) {
    if (!reportIsCurrent(r, live.generation)) continue;
    for (const u of r.units) {
      if (!names.has(u.name)) continue;
      if (u.activeState === "failed" || u.subState === "auto-restart")
        return {
          record,
          unit: u.name,
          host,
          reason: `${u.name} ${u.activeState}/${u.subState}${u.result ? ` (Result=${u.result})` : ""}`,
        };
    }
  }
  return null;
}

/**
 * What `rollback` without a GENERATION returns to: the newest success before the latest one that
 * did not fail later (a generation that failed its watch was never a success). Null: none.
 */
export function defaultRollbackTarget(history: HistoryRecord[]): HistoryRecord | null {
  const successes = history.filter((h) => h.result === "success");
  const latest = successes.at(-1);
  return successes.filter((h) => h !== latest && !h.failedLater).at(-1) ?? null;
}
