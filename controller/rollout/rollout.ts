/**
 * The rollout: lock → upload archives → write the new generation (old units kept) → follow the
 * agents' reports unit by unit (canary and batches first, if asked) → confirm the service in
 * Consul's health API → watch it → write the prune of what was replaced → history and "You're Go"
 * → confirm the replaced units gone from every host (bounded, progress said). On failure: restore the
 * previous generation (unless --no-removal), so the old versions keep serving, and say what failed
 * where. The plan (rollout-plan.ts) and its steps (rollout-steps.ts) are pure and table-tested;
 * this file carries the steps out through the scheduler (controller/scheduler/) and follow.ts.
 * The process edge (signals, exit codes) is the command layer's (commands/deploy.ts).
 */
import { uploadArchive } from "../../shared/archive-store.js";
import { errorText } from "../../shared/errors.js";
import {
  SCHEMA_VERSION,
  type Deployment,
  type HistoryRecord,
  type StackSpec,
  type StatusReport,
  type UnitSpec,
} from "../../shared/spec.js";
import type { Context } from "../context.js";
import { checkLeader } from "../../shared/stores/leader.js";
import type { Output } from "../output.js";
import type { BuiltArchive } from "../plan/archive.js";
import { checkNameClash, checkSameScheduler } from "../plan/clash.js";
import { afterGoText, confirmAfterGo } from "./after-go.js";
import { waitRemoved } from "./removed.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { HostView, UnitTarget } from "../scheduler/targets.js";
import { awaitPlacement, confirmService, followUnits, pruneArchives, watchHealthy, type BatchWatch } from "./follow.js";
import { putHistory } from "../../shared/stores/history.js";
import { laterFailure } from "./history.js";
import { DeployLock, whoAmI } from "./lock.js";
import { deleteSpec, writeSpec } from "../../shared/stores/specs.js";
import { readHistory, readLiveSpec } from "./read-back.js";
import { sayRestored } from "./restored.js";
import { planRollout, type PlanOptions, type RolloutPlan, type RolloutRequest } from "./rollout-plan.js";
import { advance, nextStep, start, type Outcome, type RolloutStep } from "./rollout-steps.js";
import type { RestartBaseline } from "./progress.js";

export interface RolloutOptions extends PlanOptions {
  timeoutSeconds: number;
  /** archives of this many recent successful generations are kept for rollback */
  keepGenerations: number;
}

export interface RolloutInput {
  /** deploy (default; rollback is a deploy of recorded units) or remove */
  kind?: "deploy" | "remove";
  stack: string;
  environment: string;
  deployment: Deployment;
  units: UnitSpec[];
  archives: BuiltArchive[];
  /** e.g. "example 7b7d061b" */
  label: string;
}

/**
 * How the command layer hears of an interruption: it calls `stop` (which gives the deploy lock
 * back and returns where things stand) when the process is interrupted; the function it returns
 * stops listening. Without one, a rollout is not interruptible (tests).
 */
export type OnInterrupt = (stop: () => Promise<string>) => () => void;

/**
 * Carries out a rollout: takes the lock, uploads the archives, reads what is live, plans, then
 * asks rollout-steps.ts for one step after another and does it, until the steps say done; then
 * history and archive pruning.
 */
export async function rollout(
  ctx: Context,
  input: RolloutInput,
  opts: RolloutOptions,
  out: Output,
  onInterrupt: OnInterrupt = () => () => undefined,
): Promise<boolean> {
  const t0 = Date.now();
  const deadline = t0 + opts.timeoutSeconds * 1000;
  const { consul, kv, scheduler } = ctx;
  const req: RolloutRequest = {
    kind: input.kind ?? "deploy",
    stack: input.stack,
    label: input.label,
    deployment: input.deployment,
    units: input.units,
    group: input.deployment.group,
  };
  if (scheduler.rolloutNote) out.info(scheduler.rolloutNote);
  scheduler.checkRollout(opts);
  const lock = await DeployLock.acquire(consul, kv, input.stack, `${req.kind} ${input.label}`);
  let stopListening = (): void => undefined;
  try {
    const hosts = await scheduler.hosts();
    const view = await scheduler.view();
    // with signing on, only what verifies against the controller's key is kept, restored or counted
    const { records: history } = await readHistory(ctx, input.stack, out);
    const { spec: before, modifyIndex } = await readLiveSpec(ctx, input.stack, out);
    if (req.kind === "deploy") checkSameScheduler(ctx.schedulerSource, before, scheduler.specFields);
    // the live deployment's units failed after their window? history says so from now on
    if (req.kind === "deploy") await markLaterFailure(ctx, input.stack, history, before, out);
    if (req.kind === "deploy") checkNameClash(input.stack, input.units, view.specs);
    const place = (units: UnitSpec[], on: HostView[]): UnitTarget[] => scheduler.place(units, on, view);
    const plan = planRollout(req, { live: before, history, hosts, place, placesGlobal: scheduler.placesGlobal }, opts);
    for (const w of plan.warnings) out.warn(w);
    const unwell = new Map(hosts.filter((h) => h.agent !== "passing").map((h) => [h.node, h.agent]));
    for (const a of input.archives) {
      const r = await uploadArchive(consul, kv, a);
      out.debug(`archive ${a.sha256}: ${r.uploaded} chunks uploaded, ${r.skipped} already present`);
    }
    let index = modifyIndex;
    /** the generation live in KV now (null once the spec is deleted) */
    let live: number | null = plan.liveGeneration;
    let generation = plan.firstGeneration - 1;
    // interrupted: a history row says so, and the lock is given back at once (rather than after its TTL)
    stopListening = onInterrupt(async () => {
      const what =
        live === null || live === before?.generation
          ? ""
          : before
            ? " with the new units beside the old ones"
            : " with the new units";
      const said = `Interrupted during the ${plan.request.kind === "remove" ? "removal" : "deployment"} of ${input.label}; released the deploy lock of ${input.stack}. Generation ${live ?? "none"} is live${what}: run the same command again to finish it.`;
      const record = historyRecord(input, plan, t0, live, "interrupted", said);
      await putHistory(consul, kv, record, ctx.signer).catch(() => undefined);
      await lock.release().catch(() => undefined);
      return said;
    });
    /** writes the next generation with these units, or deletes the spec (null); `restoring`: the
     * previous generation's units, under its own deployment (what runs, not the failed attempt) */
    const write = async (units: UnitSpec[] | null, restoring = false): Promise<number> => {
      generation++;
      if (units === null) {
        // the signed tombstone: agents with --trust remove the stack only on its word
        const environment = before?.environment ?? input.environment;
        await deleteSpec(consul, kv, input.stack, index, { generation, environment, signer: ctx.signer });
        live = null;
        return generation;
      }
      // a removal keeps what is live: its deployment and its environment (the signature binds it);
      // a restore writes the previous deployment's header
      const deployment = before && (req.kind === "remove" || restoring) ? before.deployment : input.deployment;
      const environment = before && req.kind === "remove" ? before.environment : input.environment;
      const spec: StackSpec = {
        schema: SCHEMA_VERSION,
        stack: input.stack,
        generation,
        environment,
        deployment,
        createdAt: new Date().toISOString(),
        units,
        // a removal keeps the scheduler the stack runs under
        ...(before && req.kind === "remove"
          ? before.scheduler
            ? { scheduler: before.scheduler }
            : {}
          : scheduler.specFields),
      };
      index = await writeSpec(consul, kv, spec, { modifyIndex: index, signer: ctx.signer });
      live = generation;
      return generation;
    };
    const restarts: RestartBaseline = new Map();
    const watch = (scope: UnitTarget[]): BatchWatch => ({
      stack: input.stack,
      generation,
      scope,
      deadline,
      perUnitMs: plan.policy.perUnitMs,
      unwell,
      restarts,
    });

    /** Does one step; says what it came to. */
    const perform = async (step: Exclude<RolloutStep, { kind: "done" }>): Promise<Outcome> => {
      switch (step.kind) {
        case "write-batch": {
          const g = await write(step.batch.units);
          if (step.batch.title) out.info(`${step.batch.title} (generation ${g}): ${step.batch.hosts.join(", ")}`);
          for (const r of step.batch.replacing)
            out.info(`Replacing ${r.unit} with ${r.by} on ${r.host}: stop, then start (other hosts keep serving)`);
          return { kind: step.kind };
        }
        case "await-placement": {
          // the role's holder by its session's node (null when it cannot be read or is ill-shaped:
          // agents ignore such a holder's placements, so its refusal counts no more than theirs)
          const l = await checkLeader(consul, kv).catch(() => null);
          const role = {
            holder: l && l.problem === null ? l.node : null,
            who:
              l === null
                ? "the scheduler"
                : l.node === null
                  ? "the scheduler (no agent holds the scheduler role now: see houston nodes)"
                  : `the scheduler (${l.node})`,
          };
          return { kind: step.kind, ...(await awaitPlacement(scheduler, watch([]), step.batch, hosts, role, out)) };
        }
        case "await-active":
          return {
            kind: step.kind,
            failure: await followUnits(scheduler, watch(step.scope), out),
            at: Date.now(),
          };
        case "confirm":
          return {
            kind: step.kind,
            failure: await confirmService(consul, scheduler, watch(step.scope), step.service, out, step.index === 0),
          };
        case "watch": {
          const longest = plan.policy.windows
            .filter((x) => x.seconds === step.seconds)
            .map((x) => ({ unit: x.unit, reason: x.why.replace(/^\d+s: /, "") }));
          const reasons = [...new Set(longest.map((x) => x.reason))];
          const why =
            reasons.length === 1 ? (reasons[0] ?? "") : longest.map((x) => `${x.unit}: ${x.reason}`).join("; ");
          const failure = await watchHealthy(
            scheduler,
            watch(step.scope),
            { seconds: step.seconds, why, since: step.since, units: longest.map((x) => x.unit) },
            out,
          );
          if (!failure && step.batch.canary) out.info(`Canary confirmed on ${step.batch.hosts.join(", ")}`);
          return { kind: step.kind, failure };
        }
        case "prune": {
          for (const name of step.replaced) out.info(`Destroying ${name}`);
          const g = await write(step.units);
          // a deploy's removal is confirmed after the announcement (done's confirmRemoval)
          if (!step.wait) return { kind: step.kind, removalComplete: "written" };
          const removalComplete = await waitRemoved(
            scheduler,
            input.stack,
            step.replaced,
            g,
            plan.policy.removalWaitMs,
            out,
          );
          return { kind: step.kind, removalComplete };
        }
        case "restore": {
          out.error(`${step.failure.unit} failed on ${step.failure.host}: ${step.failure.reason}`);
          // units another tool left and Houston adopted are never removed by a failed deploy
          const adopted = await adoptedUnits(scheduler, input.stack, out);
          const removed = step.added.filter((name) => !adopted.includes(name));
          for (const name of removed) out.info(`Removing ${name}`);
          for (const name of step.added.filter((n) => adopted.includes(n)))
            out.info(`Keeping ${name} as the original Houston ran it (adopted)`);
          await write(step.units, true);
          // one bound for both waits: the removal, then the restored units seen active
          const restoreUntil = Date.now() + plan.policy.removalWaitMs;
          await waitRemoved(scheduler, input.stack, removed, generation, plan.policy.removalWaitMs, out);
          // the previous versions are said to run again only when the hosts say so (stop then start restarts them)
          if (before && step.units)
            await sayRestored(scheduler, input.stack, before.generation, generation, step.units, out, {
              // as long as one unit may take (-d × -m), within the removal's bound
              until: Math.max(Math.min(restoreUntil, Date.now() + plan.policy.perUnitMs), Date.now() + 2000),
              since: plan.firstGeneration,
            });
          else
            out.info(
              adopted.length
                ? `Returned to what ran before: the original Houston's units adopted for ${input.stack} run on as they were (${adopted.join(", ")})`
                : "Removed the stack's units: nothing was deployed before",
            );
          return { kind: step.kind };
        }
        case "keep-failed":
          out.error(`${step.failure.unit} failed on ${step.failure.host}: ${step.failure.reason}`);
          out.warn(`Leaving the new units in place (--no-removal): ${step.added.join(", ") || "none"}`);
          return { kind: step.kind };
        default: {
          const unhandled: never = step;
          throw new Error(`no handler for rollout step ${JSON.stringify(unhandled)}`);
        }
      }
    };

    for (let progress = start(plan); ;) {
      const step = nextStep(plan, progress);
      if (step.kind === "done") {
        const adoptedGoing = await finish(ctx, input, plan, step, t0, live, out, opts.keepGenerations);
        if (step.confirmRemoval.length === 0 && adoptedGoing.length === 0) return step.ok;
        // the deployment stands; what is left is to see the old units gone (Ctrl-C now only gives the lock back)
        stopListening();
        stopListening = onInterrupt(async () => {
          await lock.release().catch(() => undefined);
          return `Interrupted while confirming ${afterGoText(step.confirmRemoval, adoptedGoing)}: the deployment of ${input.label} succeeded; the agents carry on`;
        });
        const going = { replaced: step.confirmRemoval, adopted: adoptedGoing };
        await confirmAfterGo(scheduler, input.stack, going, live, plan.policy.removalWaitMs, out);
        return step.ok;
      }
      progress = advance(plan, progress, await perform(step));
    }
  } finally {
    stopListening();
    await lock.release();
  }
}

/** The stack's adopted units (scheduler.adoptedOf); none, with a warning, when they cannot be read. */
async function adoptedUnits(scheduler: Scheduler, stack: string, out: Output): Promise<string[]> {
  try {
    return await scheduler.adoptedOf(stack);
  } catch (err) {
    out.warn(`the units adopted for ${stack} could not be read (${errorText(err)})`);
    return [];
  }
}

/** History record, archive pruning and the last words. */
async function finish(
  ctx: Context,
  input: RolloutInput,
  plan: RolloutPlan,
  step: Extract<RolloutStep, { kind: "done" }>,
  t0: number,
  live: number | null,
  out: Output,
  keepGenerations: number,
): Promise<string[]> {
  const removal = plan.request.kind === "remove";
  let destroying: string[] = [];
  await putHistory(ctx.consul, ctx.kv, historyRecord(input, plan, t0, live, step.result, step.message), ctx.signer);
  const candidates = new Set([...(plan.restore ?? []), ...input.units].flatMap((u) => (u.archive ? [u.archive] : [])));
  await pruneArchives(ctx, input.stack, candidates, keepGenerations, out);
  if (step.ok && !removal) {
    const after = await ctx.scheduler.afterConfirmed(
      input.stack,
      input.units.map((u) => u.name),
    );
    for (const line of after.lines) out.info(line);
    destroying = after.destroying;
  }
  if (removal) out.info(step.message);
  else if (step.ok) {
    out.info(step.message);
    out.info("Eagle, looking great. You're Go.");
  } else out.error(step.message);
  return destroying;
}

/**
 * Marks the live deployment's history record when its units failed after they stood their window
 * (the agents' reports say so now), so that `history` shows it and `rollback` skips it.
 */
export async function markLaterFailure(
  ctx: Context,
  stack: string,
  history: HistoryRecord[],
  spec: StackSpec | null,
  out: Output,
): Promise<void> {
  const reports = (await ctx.scheduler.reports()).get(stack) ?? new Map<string, StatusReport>();
  const f = laterFailure(history, spec, reports);
  if (!f) return;
  const failedLater = { at: new Date().toISOString(), unit: f.unit, host: f.host, reason: f.reason };
  f.record.failedLater = failedLater;
  await putHistory(ctx.consul, ctx.kv, { ...f.record, failedLater }, ctx.signer);
  out.warn(
    `generation ${f.record.generation} of ${stack} passed its window but failed later (${f.unit} on ${f.host}: ${f.reason}); marked in history, rollback skips it`,
  );
}

/** The history row of a rollout that ended (or was interrupted) with `live` the generation in KV. */
function historyRecord(
  input: RolloutInput,
  plan: RolloutPlan,
  t0: number,
  live: number | null,
  result: HistoryRecord["result"],
  message: string,
): HistoryRecord {
  const removedUnits = (plan.restore ?? []).filter((u) => plan.replaced.includes(u.name));
  return {
    schema: SCHEMA_VERSION,
    stack: input.stack,
    generation: plan.firstGeneration,
    environment: input.environment,
    deployment: input.deployment,
    user: whoAmI(),
    startedAt: new Date(t0).toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - t0,
    result,
    message,
    units: plan.request.kind === "remove" ? removedUnits : input.units,
    finalGeneration: live,
  };
}
