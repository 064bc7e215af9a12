/**
 * The rollout: lock → upload archives → write the new generation (old units kept) → follow the
 * agents' reports unit by unit (canary and batches first, if asked) → confirm the service in
 * Consul's health API → prune what was replaced → history. On failure: restore the previous
 * generation (unless --no-removal), so the old versions keep serving, and say what failed where.
 * Decisions are in rollout-plan.ts (pure, table-tested); this file carries its steps out, and
 * follow.ts watches the fleet through the scheduler (controller/scheduler/).
 */
import { ConfigError } from "../../shared/errors.js";
import { releaseAdopted } from "../commands/adopt.js";
import { uploadArchive } from "../../shared/archive-store.js";
import {
  SCHEMA_VERSION,
  type Deployment,
  type HistoryRecord,
  type StackSpec,
  type UnitSpec,
} from "../../shared/spec.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import type { BuiltArchive } from "../plan/archive.js";
import { isGlobal } from "../../shared/placement.js";
import { checkNameClash } from "../plan/clash.js";
import { TimeoutError } from "./fleet-view.js";
import { confirmService, followUnits, pruneArchives, waitRemoved, watchHealthy } from "./follow.js";
import type { HostView, UnitTarget } from "./progress.js";
import { readHistory, writeHistory } from "./history.js";
import { DeployLock, whoAmI } from "./lock.js";
import { deleteSpec, readSpecAt, writeSpec } from "./publish.js";
import {
  START,
  nextStep,
  type Batch,
  type Failure,
  planRollout,
  type RolloutPlan,
  type RolloutProgress,
  type RolloutRequest,
  type RolloutStep,
} from "./rollout-plan.js";

export interface RolloutOptions {
  delaySeconds: number;
  maxTries: number;
  timeoutSeconds: number;
  skipConsul: boolean;
  noRemoval: boolean;
  maxParallel: number | null;
  canary: number;
  /** after a batch is active (and confirmed), watch it this long; 0: one more look */
  minHealthySeconds: number;
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
 * Carries out a rollout: takes the lock, uploads the archives, reads what is live, then asks
 * rollout-plan.ts for one step after another and does it (write a generation, follow the agents
 * and Consul, prune, restore), until the planner says done; then history and archive pruning.
 */
export async function rollout(ctx: Context, input: RolloutInput, opts: RolloutOptions, out: Output): Promise<boolean> {
  const t0 = Date.now();
  const deadline = t0 + opts.timeoutSeconds * 1000;
  const { consul, kv } = ctx;
  const req: RolloutRequest = {
    kind: input.kind ?? "deploy",
    stack: input.stack,
    label: input.label,
    deployment: input.deployment,
    units: input.units,
    group: input.deployment.group,
  };
  if (ctx.schedulerName === "fleet" && (opts.canary > 0 || opts.maxParallel !== null))
    throw new ConfigError(
      opts.canary > 0 ? "--canary" : "--max-parallel",
      "fleet places and starts the units itself: canaries and batches need the agents scheduler",
    );
  const lock = await DeployLock.acquire(consul, kv, input.stack, `${req.kind} ${input.label}`);
  let onExit = (): void => undefined;
  try {
    const hosts = await ctx.scheduler.hosts();
    const view = await ctx.scheduler.view();
    const history = await readHistory(consul, kv, input.stack);
    const { spec: before, modifyIndex } = await readSpecAt(consul, kv, input.stack);
    if (req.kind === "deploy") checkNameClash(input.stack, input.units, view.specs);
    const place = (units: UnitSpec[], on: HostView[]): UnitTarget[] => ctx.scheduler.place(units, on, view);
    const plan = planRollout(req, { live: before, history, hosts, place }, opts);
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
    // Ctrl-C: give the lock back at once (rather than after its TTL) and say where things stand
    const interrupted = (): void => {
      void lock.release().finally(() => {
        const what =
          live === null || live === before?.generation
            ? ""
            : before
              ? " with the new units beside the old ones"
              : " with the new units";
        out.error(
          `Interrupted during the deployment of ${input.label}; released the deploy lock of ${input.stack}. Generation ${live ?? "none"} is live${what}: run the same command again to finish it.`,
        );
        process.exit(130);
      });
    };
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    onExit = () => {
      process.off("SIGINT", interrupted);
      process.off("SIGTERM", interrupted);
    };
    /** writes the next generation with these units, or deletes the spec (null) */
    const write = async (units: UnitSpec[] | null): Promise<number> => {
      generation++;
      if (units === null) {
        await deleteSpec(consul, kv, input.stack, index);
        live = null;
        return generation;
      }
      const deployment = before && req.kind === "remove" ? before.deployment : input.deployment;
      const spec: StackSpec = {
        schema: SCHEMA_VERSION,
        stack: input.stack,
        generation,
        environment: input.environment,
        deployment,
        createdAt: new Date().toISOString(),
        units,
        ...(ctx.schedulerName === "fleet" ? { scheduler: "fleet" as const } : {}),
      };
      index = await writeSpec(consul, kv, spec, index, ctx.signer);
      live = generation;
      return generation;
    };

    let progress: RolloutProgress = START;
    let removalComplete = true;
    for (;;) {
      const step = nextStep(plan, progress, opts.noRemoval);
      if (step.kind === "done") {
        const ok = step.ok && (req.kind !== "remove" || removalComplete);
        await finish(ctx, input, plan, step, ok, t0, live, out, opts.keepGenerations);
        return ok;
      }
      switch (step.kind) {
        case "write-batch": {
          const g = await write(step.batch.units);
          if (step.batch.title) out.info(`${step.batch.title} (generation ${g}): ${step.batch.hosts.join(", ")}`);
          progress = { ...progress, written: progress.written + 1 };
          break;
        }
        case "follow-batch": {
          const placed = await placedScope(ctx, input, step.batch, hosts, generation, deadline);
          let failure = placed.failure;
          const scope = placed.scope;
          if (!failure) failure = await followUnits(ctx, input.stack, scope, generation, deadline, opts, out, unwell);
          if (!failure && step.confirm)
            failure = await confirmService(ctx, input, scope, generation, deadline, opts, out);
          if (!failure)
            failure = await watchHealthy(ctx, input.stack, scope, generation, opts.minHealthySeconds, deadline, out);
          if (!failure && step.batch.canary) out.info(`Canary confirmed on ${step.batch.hosts.join(", ")}`);
          progress = failure ? { ...progress, failure } : { ...progress, confirmed: progress.confirmed + 1 };
          break;
        }
        case "prune": {
          for (const name of step.replaced) out.info(`Destroying ${name}`);
          const g = await write(step.units);
          removalComplete = await waitRemoved(ctx, input.stack, step.replaced, g, out);
          progress = { ...progress, settled: true };
          break;
        }
        case "restore": {
          out.error(`${step.failure.unit} failed on ${step.failure.host}: ${step.failure.reason}`);
          for (const name of step.added) out.info(`Removing ${name}`);
          await write(step.units);
          await waitRemoved(ctx, input.stack, step.added, generation, out);
          out.info(
            before
              ? `Restored generation ${before.generation}'s units as generation ${generation}: the previous versions keep serving`
              : "Removed the stack's units: nothing was deployed before",
          );
          progress = { ...progress, settled: true };
          break;
        }
        case "keep-failed":
          out.error(`${step.failure.unit} failed on ${step.failure.host}: ${step.failure.reason}`);
          out.warn(`Leaving the new units in place (--no-removal): ${step.added.join(", ") || "none"}`);
          progress = { ...progress, settled: true };
          break;
        default: {
          const unhandled: never = step;
          throw new Error(`no handler for rollout step ${JSON.stringify(unhandled)}`);
        }
      }
    }
  } finally {
    onExit();
    await lock.release();
  }
}

/**
 * The batch's units where the scheduler put them in the written generation (the plan's scope is
 * a preview); a unit it could not place fails the rollout, saying what no machine satisfies.
 */
async function placedScope(
  ctx: Context,
  input: RolloutInput,
  batch: Batch,
  hosts: HostView[],
  generation: number,
  deadline: number,
): Promise<{ scope: UnitTarget[]; failure: Failure | null }> {
  const names = new Set(batch.scope.map((t) => t.name));
  const units = batch.units.filter((u) => names.has(u.name));
  // every agent places global units itself: the plan's targets are theirs, nothing to wait for
  if (units.every(isGlobal)) return { scope: batch.scope, failure: null };
  try {
    const placed = await ctx.scheduler.placed(input.stack, generation, units, hosts, deadline);
    const first = placed.unplaced[0];
    return {
      scope: placed.targets,
      failure: first ? { unit: first.unit, host: "any machine", reason: first.reason } : null,
    };
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    return { scope: batch.scope, failure: { unit: units[0]?.name ?? "?", host: "-", reason: err.message } };
  }
}

/** History record, archive pruning and the last words. */
async function finish(
  ctx: Context,
  input: RolloutInput,
  plan: RolloutPlan,
  step: Extract<RolloutStep, { kind: "done" }>,
  ok: boolean,
  t0: number,
  live: number | null,
  out: Output,
  keepGenerations: number,
): Promise<void> {
  const removal = plan.request.kind === "remove";
  const removedUnits = (plan.restore ?? []).filter((u) => plan.replaced.includes(u.name));
  const record: HistoryRecord = {
    schema: SCHEMA_VERSION,
    stack: input.stack,
    generation: plan.firstGeneration,
    environment: input.environment,
    deployment: input.deployment,
    user: whoAmI(),
    startedAt: new Date(t0).toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - t0,
    result: step.result,
    message: step.message,
    units: removal ? removedUnits : input.units,
    finalGeneration: live,
  };
  await writeHistory(ctx.consul, ctx.kv, record);
  const candidates = new Set([...(plan.restore ?? []), ...input.units].flatMap((u) => (u.archive ? [u.archive] : [])));
  await pruneArchives(ctx, input.stack, candidates, keepGenerations, out);
  // the original Houston's units adopted for this stack: replaced now, so fleet destroys them
  if (ok && ctx.schedulerName === "fleet" && !removal)
    for (const name of await releaseAdopted(ctx.consul, ctx.kv, input.stack))
      out.info(`Destroying ${name} (adopted from the original Houston)`);
  if (removal) out.info(step.message);
  else if (ok) {
    out.info(step.message);
    out.info("Eagle, looking great. You're Go.");
  } else out.error(step.message);
}
