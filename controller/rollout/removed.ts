/**
 * Waiting for units to leave (I/O, through the scheduler): until no host's report lists them, for
 * a prune, a removal, and after "You're Go". A wait longer than a moment is said.
 */
import type { Output } from "../output.js";
import { TimeoutError } from "../scheduler/agent-reports.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import { NOTICE_AFTER_MS, removalPending } from "./progress.js";

/** Waits until no report lists the removed units; false (and a warning) when `waitMs` runs out first. */
export async function waitRemoved(
  scheduler: Scheduler,
  stack: string,
  names: string[],
  generation: number,
  waitMs: number,
  out: Output,
): Promise<boolean> {
  if (names.length === 0) return true;
  let pending: string[] = [];
  // a removal usually takes a moment; a longer one is said (off a terminal, again every 10 s)
  let said = false;
  const say = () => out.progress(`waiting for ${names.join(", ")} to go: still reported on ${pending.join(", ")}`);
  const notice = setTimeout(() => {
    said = true;
    say();
  }, NOTICE_AFTER_MS);
  try {
    await scheduler.follow(
      stack,
      Date.now() + waitMs,
      (reports) => {
        pending = removalPending(names, reports);
        if (pending.length === 0) return true;
        if (said) say();
        return undefined;
      },
      () => `still present on ${pending.join(", ")}`,
    );
    return true;
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    out.warn(
      `generation ${generation}: ${names.join(", ")} still reported on ${pending.join(", ")} after ${waitMs / 1000}s; the agents will keep converging`,
    );
    return false;
  } finally {
    clearTimeout(notice);
    if (said) out.progress("");
  }
}
