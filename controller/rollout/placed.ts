/**
 * Where the scheduler put a generation's units, unless a host refuses the generation's spec first
 * (I/O, through the scheduler): the one race that a batch's placement (follow.ts awaitPlacement)
 * and a restore (restored.ts) both wait on. An agent that refuses a spec (unsigned, say) will not
 * place or start it, so its refusal ends the wait at once rather than at the deadline.
 */
import type { StatusReport, UnitSpec } from "../../shared/spec.js";
import type { Placed, Scheduler } from "../scheduler/scheduler.js";
import type { HostView } from "../scheduler/targets.js";
import { refusal } from "./progress.js";

export type PlacedOrRefused = ({ kind: "placed" } & Placed) | { kind: "refused"; host: string; reason: string };

/**
 * The placement of `generation`'s units, or the first refusal of it that `refused` finds in the
 * reports (by default any reporting host's: the caller says whose count). A placement past the
 * deadline rejects with the scheduler's TimeoutError.
 */
export async function placedUnlessRefused(
  scheduler: Scheduler,
  w: { stack: string; generation: number; units: UnitSpec[]; hosts: HostView[]; deadline: number },
  refused: (reports: ReadonlyMap<string, StatusReport>) => { host: string; reason: string } | null = (reports) =>
    refusal(w.generation, reports),
): Promise<PlacedOrRefused> {
  const { stack, generation, units, hosts, deadline } = w;
  const ac = new AbortController();
  const refusing = scheduler
    .follow(
      stack,
      deadline,
      (reports) => refused(reports) ?? undefined,
      () => "",
      ac.signal,
    )
    .then(
      (r) => ({ kind: "refused" as const, host: r.host, reason: r.reason }),
      () => new Promise<never>(() => undefined), // the placement's own wait ends it
    );
  try {
    return await Promise.race([
      scheduler.placed(stack, generation, units, hosts, deadline).then((p) => ({ kind: "placed" as const, ...p })),
      refusing,
    ]);
  } finally {
    ac.abort();
  }
}
