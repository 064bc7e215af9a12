/**
 * The rollout as a state machine (pure): how far it got (RolloutProgress, with its phase) → the
 * next step (nextStep); a step's outcome → the progress after it (advance). rollout.ts carries the
 * steps out; everything it decides is here or in the plan (rollout-plan.ts).
 *
 * Per batch: write-batch → await-placement (skipped when every unit is global, but under fleet) →
 * await-active →
 * confirm (services only, unless --skip-consul) → watch → the next batch's write-batch. After the
 * last batch: prune (when units were replaced or removed) → done. Any failure: restore (or
 * keep-failed with --no-removal) → done.
 *
 * A batch's window counts from the moment its units were all seen active (the confirm phase
 * watches them as the window does, so the two overlap). A deploy is done once the new units are
 * confirmed and the old ones' removal is written: "You're Go" comes then, and the removal is
 * confirmed after it (done's `confirmRemoval`), as Nomad ends a deployment once the new
 * allocations are healthy. A removal is its own confirmation: it is waited for before done.
 */
import type { HistoryRecord, UnitSpec } from "../../shared/spec.js";
import type { UnitTarget } from "../scheduler/targets.js";
import type { Batch, RolloutPlan, ServiceCheck } from "./rollout-plan.js";
import { reasonLine } from "./progress.js";

export interface Failure {
  unit: string;
  host: string;
  reason: string;
}

export type RolloutStep =
  /** write the batch's spec (a new generation) */
  | { kind: "write-batch"; index: number; batch: Batch }
  /** wait until the scheduler has placed the written generation's units */
  | { kind: "await-placement"; index: number; batch: Batch }
  /** follow the agents' reports until each unit is active where it was placed */
  | { kind: "await-active"; index: number; batch: Batch; scope: UnitTarget[] }
  /** the service passing in Consul's health API on its hosts */
  | { kind: "confirm"; index: number; batch: Batch; scope: UnitTarget[]; service: ServiceCheck }
  /** the batch's window (its units' longest; 0: one more look): nothing failed, restarted or left
   * active; counted from `since`, when its units were all seen active (null: from now) */
  | { kind: "watch"; index: number; batch: Batch; scope: UnitTarget[]; seconds: number; since: number | null }
  /** write the final spec without the replaced (or removed) units; `wait`: wait until they are gone
   * now (a removal), or write only and confirm their removal after the announcement (a deploy) */
  | { kind: "prune"; replaced: string[]; units: UnitSpec[] | null; wait: boolean }
  /** after a failure: the previous generation's units again (null: delete the spec) */
  | { kind: "restore"; failure: Failure; added: string[]; units: UnitSpec[] | null }
  /** after a failure with --no-removal: the new units stay */
  | { kind: "keep-failed"; failure: Failure; added: string[] }
  | {
      kind: "done";
      ok: boolean;
      result: HistoryRecord["result"];
      message: string;
      /** units whose removal is written but not yet confirmed: wait for it after the announcement */
      confirmRemoval: string[];
    };

export type Phase = RolloutStep["kind"];

/** How far a rollout got: what the loop tells the planner after each step. */
export interface RolloutProgress {
  /** the step to take next */
  phase: Phase;
  /** the batch in hand (an index into the plan's batches) */
  batch: number;
  /** the batch's units where the scheduler put them (known after await-placement) */
  scope: UnitTarget[];
  failure: Failure | null;
  /** the pruned units are gone from every report (false: the agents were still at it when we stopped waiting) */
  removalComplete: boolean;
  /** when the batch in hand was seen active on every host (ms since the epoch; null: not yet) */
  activeAt?: number | null;
  /** pruned units whose removal is confirmed after the announcement (a deploy's) */
  removalPending?: string[];
}

/** What a step came to, as the loop tells advance(). */
export type Outcome =
  | { kind: "write-batch" }
  | { kind: "await-placement"; scope: UnitTarget[]; failure: Failure | null }
  /** `at`: when the batch's units were all seen active (its window counts from then) */
  | { kind: "await-active"; failure: Failure | null; at?: number }
  | { kind: "confirm" | "watch"; failure: Failure | null }
  /** `removalComplete`: a removal waited for and finished; a deploy's prune only writes ("written") */
  | { kind: "prune"; removalComplete: boolean | "written" }
  | { kind: "restore" | "keep-failed" };

/** Where a rollout of this plan begins: its first batch, or (a removal) the prune. */
export function start(plan: RolloutPlan): RolloutProgress {
  const p: RolloutProgress = { phase: "write-batch", batch: 0, scope: [], failure: null, removalComplete: true };
  return plan.batches.length > 0 ? p : afterBatches(plan, p);
}

export function nextStep(plan: RolloutPlan, p: RolloutProgress): RolloutStep {
  const index = p.batch;
  const batch = (): Batch => {
    const b = plan.batches[index];
    if (!b) throw new Error(`rollout phase ${p.phase} for batch ${index} of ${plan.batches.length}`);
    return b;
  };
  switch (p.phase) {
    case "write-batch":
    case "await-placement":
      return { kind: p.phase, index, batch: batch() };
    case "await-active":
      return { kind: "await-active", index, batch: batch(), scope: p.scope };
    case "confirm": {
      if (!plan.confirm) throw new Error("rollout phase confirm without a service to confirm");
      return { kind: "confirm", index, batch: batch(), scope: p.scope, service: plan.confirm };
    }
    case "watch":
      return {
        kind: "watch",
        index,
        batch: batch(),
        scope: p.scope,
        seconds: batch().watchSeconds,
        since: p.activeAt ?? null,
      };
    case "prune":
      return { kind: "prune", replaced: plan.replaced, units: plan.final, wait: plan.request.kind === "remove" };
    case "restore":
      return { kind: "restore", failure: failureOf(p), added: plan.added, units: plan.restore };
    case "keep-failed":
      return { kind: "keep-failed", failure: failureOf(p), added: plan.added };
    case "done":
      return done(plan, p);
    default: {
      const unknown: never = p.phase;
      throw new Error(`unknown rollout phase ${String(unknown)}`);
    }
  }
}

/** The progress after a step of phase `p.phase` came to `o`. */
export function advance(plan: RolloutPlan, p: RolloutProgress, o: Outcome): RolloutProgress {
  if (o.kind !== p.phase) throw new Error(`outcome of ${o.kind} while the rollout is at ${p.phase}`);
  switch (o.kind) {
    case "write-batch": {
      const b = plan.batches[p.batch];
      return b && b.placing.length === 0
        ? { ...p, phase: "await-active", scope: b.scope }
        : { ...p, phase: "await-placement" };
    }
    case "await-placement":
      return o.failure ? failed(plan, p, o.failure) : { ...p, phase: "await-active", scope: o.scope };
    case "await-active":
      return o.failure
        ? failed(plan, p, o.failure)
        : { ...p, phase: plan.confirm ? "confirm" : "watch", activeAt: o.at ?? null };
    case "confirm":
      return o.failure ? failed(plan, p, o.failure) : { ...p, phase: "watch" };
    case "watch": {
      if (o.failure) return failed(plan, p, o.failure);
      const next = { ...p, batch: p.batch + 1, scope: [], activeAt: null };
      return next.batch < plan.batches.length ? { ...next, phase: "write-batch" } : afterBatches(plan, next);
    }
    case "prune":
      return o.removalComplete === "written"
        ? { ...p, phase: "done", removalComplete: true, removalPending: plan.replaced }
        : { ...p, phase: "done", removalComplete: o.removalComplete };
    case "restore":
    case "keep-failed":
      return { ...p, phase: "done" };
    default: {
      const unknown: never = o;
      throw new Error(`unknown rollout outcome ${JSON.stringify(unknown)}`);
    }
  }
}

function afterBatches(plan: RolloutPlan, p: RolloutProgress): RolloutProgress {
  return { ...p, phase: plan.replaced.length > 0 ? "prune" : "done" };
}

function failed(plan: RolloutPlan, p: RolloutProgress, failure: Failure): RolloutProgress {
  return { ...p, failure, phase: plan.policy.onFailure === "keep" ? "keep-failed" : "restore" };
}

function failureOf(p: RolloutProgress): Failure {
  if (!p.failure) throw new Error(`rollout phase ${p.phase} without a failure`);
  return p.failure;
}

function done(plan: RolloutPlan, p: RolloutProgress): Extract<RolloutStep, { kind: "done" }> {
  const req = plan.request;
  const f = p.failure;
  if (f)
    return {
      kind: "done",
      ok: false,
      result: plan.policy.onFailure === "keep" ? "failed" : "rolled-back",
      message: `Deployment of ${req.label} failed: ${f.unit} failed on ${f.host}: ${reasonLine(f.reason)}`,
      confirmRemoval: [],
    };
  if (req.kind === "remove")
    return {
      kind: "done",
      // a removal the agents have not finished yet is not a success (they keep converging)
      ok: p.removalComplete,
      result: "removed",
      message: `Removed ${plan.replaced.length} units of ${req.stack}${req.group ? ` group ${req.group}` : ""}`,
      confirmRemoval: [],
    };
  const what = req.deployment.type === "service" ? " and its dependencies" : "";
  return {
    kind: "done",
    ok: true,
    result: "success",
    message: `Deployment of ${req.label}${what} successful.`,
    confirmRemoval: p.removalPending ?? [],
  };
}
