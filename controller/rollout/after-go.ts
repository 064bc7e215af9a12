/**
 * After "You're Go" (I/O, through the scheduler): the deployment stands, and what it set going is
 * seen gone before the command exits, within a bound, as Nomad finishes a deployment once the new
 * allocations are healthy: the replaced units stopped and removed on every host, and the original
 * Houston's adopted units destroyed in fleet. Each says what it waits for; past the bound, a warning.
 */
import type { Output } from "../output.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import { waitRemoved } from "./removed.js";

/**
 * After "You're Go": waits until the replaced units are gone from every host's report, saying what
 * it waits for; past `waitMs` it warns (the deployment stands; the agents keep converging).
 */
async function confirmRemovalAfterGo(
  scheduler: Scheduler,
  stack: string,
  names: string[],
  generation: number | null,
  waitMs: number,
  out: Output,
): Promise<void> {
  const t0 = Date.now();
  out.info(
    `Confirming that ${names.join(", ")} ${names.length > 1 ? "are" : "is"} stopped and removed on every host (up to ${waitMs / 1000}s)`,
  );
  if (await waitRemoved(scheduler, stack, names, generation ?? 0, waitMs, out))
    out.info(
      `${names.join(", ")} removed on every host, ${((Date.now() - t0) / 1000).toFixed(1)}s after the announcement`,
    );
}

/**
 * After "You're Go": the original Houston's units released for destruction (fleet) seen destroyed,
 * saying what it waits for; past `waitMs` a warning (the deployment stands).
 */
async function confirmAdoptedDestroyed(
  scheduler: Scheduler,
  names: string[],
  waitMs: number,
  out: Output,
): Promise<void> {
  if (names.length === 0) return;
  const t0 = Date.now();
  out.info(
    `Confirming that fleet destroys ${names.join(", ")} (adopted from the original Houston; up to ${waitMs / 1000}s)`,
  );
  const left = await scheduler.destroyedBy(names, t0 + waitMs, (pending, problem) =>
    out.progress(
      problem
        ? `cannot tell whether ${pending.join(", ")} are destroyed in fleet: ${problem}`
        : `waiting for the scheduler agent to destroy ${pending.join(", ")} in fleet`,
    ),
  );
  out.progress("");
  if (left.length > 0)
    out.warn(`${left.join(", ")} not destroyed in fleet after ${waitMs / 1000}s; the scheduler agent keeps at it`);
  else
    out.info(
      `${names.join(", ")} destroyed in fleet, ${((Date.now() - t0) / 1000).toFixed(1)}s after the announcement (fleet stops them on its hosts at its next tick)`,
    );
}

/** What is confirmed after "You're Go", in words (for a Ctrl-C during it). */
export function afterGoText(replaced: readonly string[], adopted: readonly string[]): string {
  return [
    ...(replaced.length ? [`the removal of ${replaced.join(", ")}`] : []),
    ...(adopted.length ? [`fleet's destruction of ${adopted.join(", ")}`] : []),
  ].join(" and ");
}

/** Both confirmations, side by side within the one bound `waitMs`. */
export async function confirmAfterGo(
  scheduler: Scheduler,
  stack: string,
  going: { replaced: string[]; adopted: string[] },
  generation: number | null,
  waitMs: number,
  out: Output,
): Promise<void> {
  await Promise.all([
    going.replaced.length > 0
      ? confirmRemovalAfterGo(scheduler, stack, going.replaced, generation, waitMs, out)
      : undefined,
    confirmAdoptedDestroyed(scheduler, going.adopted, waitMs, out),
  ]);
}
