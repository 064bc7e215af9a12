/**
 * The rollout: lock → upload archives → write the new generation (old units kept) → follow the
 * agents' reports unit by unit (canary and batches first, if asked) → confirm the service in
 * Consul's health API → prune what was replaced → history. On failure: restore the previous
 * generation (unless --no-removal), so the old versions keep serving, and say what failed where.
 * Decisions are in progress.ts (pure); this file only sequences I/O.
 */
import { serviceTags } from "../../shared/spec.js";
import { describeHost } from "./confirm.js";
import { errorText } from "../../shared/errors.js";
import {
  SCHEMA_VERSION,
  StackSpecSchema,
  type Deployment,
  type HistoryRecord,
  type StackSpec,
  type UnitSpec,
} from "../../shared/spec.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import type { BuiltArchive } from "../plan/archive.js";
import { TimeoutError, followHealth, followReports, parseReports, readHosts } from "./fleet-view.js";
import { readHistory, writeHistory } from "./history.js";
import { DeployLock, whoAmI } from "./lock.js";
import { archivesToKeep, decide, removalPending, type UnitTarget } from "./progress.js";
import { uploadArchive } from "../../shared/archive-store.js";
import { deleteSpec, readSpecAt, writeSpec } from "./publish.js";
import {
  START,
  nextStep,
  planRollout,
  type Failure,
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

/** How long agents get to carry out a prune or a restore before we say so and move on. */
const REMOVAL_WAIT_MS = 120_000;

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
  const lock = await DeployLock.acquire(consul, kv, input.stack, `${req.kind} ${input.label}`);
  let onExit = (): void => undefined;
  try {
    const hosts = await readHosts(consul, kv);
    const history = await readHistory(consul, kv, input.stack);
    const { spec: before, modifyIndex } = await readSpecAt(consul, kv, input.stack);
    const plan = planRollout(req, { live: before, history, hosts }, opts);
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
          let failure = await followUnits(ctx, input.stack, step.batch.scope, generation, deadline, opts, out, unwell);
          if (!failure && step.confirm)
            failure = await confirmService(ctx, input, step.batch.scope, generation, deadline, opts, out);
          if (!failure) failure = await recheck(ctx, input.stack, step.batch.scope, generation);
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
  if (removal) out.info(step.message);
  else if (ok) {
    out.info(step.message);
    out.info("Eagle, looking great. You're Go.");
  } else out.error(step.message);
}

/** Follows the units in order, logging each as it starts and completes. Returns the failure, if any. */
async function followUnits(
  ctx: Context,
  stack: string,
  units: UnitTarget[],
  generation: number,
  deadline: number,
  opts: RolloutOptions,
  out: Output,
  unwell: ReadonlyMap<string, string>,
): Promise<Failure | null> {
  const perUnitMs = opts.delaySeconds * opts.maxTries * 1000;
  let current = 0;
  let since = Date.now();
  let last = "";
  if (units[0]) out.info(`Deploying ${units[0].name}`);
  for (;;) {
    const until = Math.min(deadline, since + perUnitMs);
    let step: { failed: Failure | null; at: number };
    try {
      step = await followReports(
        ctx.consul,
        ctx.kv,
        stack,
        until,
        (reports) => {
          const d = decide(units, generation, reports);
          if (d.kind === "failed") return { failed: { unit: d.unit, host: d.host, reason: d.reason }, at: current };
          last = d.kind === "waiting" ? `${d.unit} not active yet on ${d.pending.join(", ")}` : "";
          out.progress(
            d.kind === "waiting"
              ? `${d.unit}: ${d.done.length ? `active on ${d.done.join(", ")}; ` : ""}waiting on ${d.pending.join(", ")}`
              : "",
          );
          const at = d.kind === "waiting" ? units.findIndex((u) => u.name === d.unit) : units.length;
          return at !== current ? { failed: null, at } : undefined;
        },
        () => last,
      );
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      const unit = units[current];
      const sick = (unit?.hosts ?? [])
        .filter((h) => unwell.has(h))
        .map((h) => `houston-agent on ${h} is ${unwell.get(h)}`);
      return {
        unit: unit?.name ?? "?",
        host: unit?.hosts.join(", ") ?? "?",
        reason: `timed out after ${Math.round((Date.now() - since) / 1000)}s: ${err.message || "no report"}${sick.length ? ` (${sick.join("; ")})` : ""}`,
      };
    }
    if (step.failed) {
      out.progress("");
      return step.failed;
    }
    for (; current < step.at; current++) {
      out.info(`${units[current]?.name} is active on ${units[current]?.hosts.join(", ")}`);
      if (units[current + 1]) out.info(`Deploying ${units[current + 1]?.name}`);
    }
    since = Date.now();
    if (current >= units.length) {
      out.progress("");
      return null;
    }
  }
}

/**
 * The service must be passing in Consul with its version tag on every host it runs on. Meanwhile
 * the agents' reports are still followed: a unit that fails now fails the rollout at once, with
 * its Result and log lines, and a check that stays critical longer than one unit may take fails
 * it then, quoting the check's output.
 */
async function confirmService(
  ctx: Context,
  input: RolloutInput,
  scope: UnitTarget[],
  generation: number,
  deadline: number,
  opts: RolloutOptions,
  out: Output,
): Promise<Failure | null> {
  const svc = input.units.find((u) => u.role === "service");
  if (!svc) return null;
  const name = svc.service?.name ?? input.stack;
  const tags = serviceTags(svc.version, svc.group);
  const nodes = scope.find((t) => t.name === svc.name)?.hosts ?? [];
  const ac = new AbortController();
  const seen = new Map<string, string>();
  const health = followHealth(ctx.consul, name, tags, nodes, {
    deadline,
    limitMs: opts.delaySeconds * opts.maxTries * 1000,
    signal: ac.signal,
    onChange: (hosts) => {
      const waiting = hosts.filter((h) => h.status !== "passing").map((h) => `${h.node} ${h.status}`);
      out.progress(waiting.length ? `${name} in Consul: waiting on ${waiting.join(", ")}` : "");
      for (const h of hosts) {
        const line = describeHost(h);
        if (seen.get(h.node) !== line) out.info(`Consul check of ${name} on ${line}`);
        seen.set(h.node, line);
      }
    },
  }).then(
    (d): Failure | null =>
      d.kind === "passing"
        ? null
        : {
            unit: svc.name,
            host: d.host.node,
            reason: `its Consul check stayed critical for ${Math.round(d.criticalForMs / 1000)}s: ${d.host.output || "(no output in Consul's catalog yet)"}`,
          },
    (err: unknown): Failure | null => {
      if (err instanceof TimeoutError)
        return { unit: svc.name, host: nodes.join(", "), reason: `${errorText(err)} (confirm with Consul timed out)` };
      throw err;
    },
  );
  const unitFailure = followReports(
    ctx.consul,
    ctx.kv,
    input.stack,
    deadline,
    (reports) => {
      const d = decide(scope, generation, reports);
      return d.kind === "failed" ? { unit: d.unit, host: d.host, reason: d.reason } : undefined;
    },
    () => "",
    ac.signal,
  ).catch(() => new Promise<Failure | null>(() => undefined)); // ends with the health watch
  try {
    const failure = await Promise.race([health, unitFailure]);
    if (failure) return failure;
  } finally {
    ac.abort();
    out.progress("");
  }
  out.info(`${svc.name} has started`);
  out.info("Validated service is running with Consul");
  return null;
}

/** Units can fail after they became active: look once more before declaring success. */
async function recheck(ctx: Context, stack: string, scope: UnitTarget[], generation: number): Promise<Failure | null> {
  const reports = parseReports(await ctx.consul.kvList(ctx.kv.status), ctx.kv).get(stack) ?? new Map();
  const d = decide(scope, generation, reports);
  return d.kind === "failed" ? { unit: d.unit, host: d.host, reason: d.reason } : null;
}

export async function waitRemoved(
  ctx: Context,
  stack: string,
  names: string[],
  generation: number,
  out: Output,
): Promise<boolean> {
  if (names.length === 0) return true;
  let pending: string[] = [];
  try {
    await followReports(
      ctx.consul,
      ctx.kv,
      stack,
      Date.now() + REMOVAL_WAIT_MS,
      (reports) => {
        pending = removalPending(names, reports);
        return pending.length === 0 ? true : undefined;
      },
      () => `still present on ${pending.join(", ")}`,
    );
    return true;
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    out.warn(
      `generation ${generation}: ${names.join(", ")} still reported on ${pending.join(", ")} after ${REMOVAL_WAIT_MS / 1000}s; the agents will keep converging`,
    );
    return false;
  }
}

/**
 * Deletes this stack's archives that no spec references and that none of its last
 * `keepGenerations` successful deployments used (so `rollback` can return to any of those).
 */
export async function pruneArchives(
  ctx: Context,
  stack: string,
  candidates: Set<string>,
  keepGenerations: number,
  out: Output,
): Promise<void> {
  const history = await readHistory(ctx.consul, ctx.kv, stack);
  const keep = archivesToKeep(history, keepGenerations);
  const all = new Set([
    ...candidates,
    ...history.flatMap((h) => h.units.flatMap((u) => (u.archive ? [u.archive] : []))),
  ]);
  for (const e of await ctx.consul.kvList(ctx.kv.stacks)) {
    if (!ctx.kv.stackOfSpecKey(e.key)) continue;
    // an unreadable spec might reference anything: then keep every candidate
    let raw: unknown;
    try {
      raw = JSON.parse(e.value.toString("utf8"));
    } catch {
      return;
    }
    const spec = StackSpecSchema.safeParse(raw);
    if (!spec.success) return;
    for (const u of spec.data.units) if (u.archive) keep.add(u.archive);
  }
  const present = new Set(await ctx.consul.kvKeys(ctx.kv.archives, "/"));
  for (const sha of all) {
    if (keep.has(sha) || !present.has(ctx.kv.archive(sha))) continue;
    await ctx.consul.kvDeletePrefix(ctx.kv.archive(sha));
    out.info(`Removed archive ${sha.slice(0, 12)} from Consul`);
  }
}
