/**
 * Deploy-side commands: service / standalone / global deployments, remove, rollback, force-unlock.
 */
import { HoustonError } from "../../shared/errors.js";
import { SCHEMA_VERSION, type HistoryRecord } from "../../shared/spec.js";
import type { Manifest } from "../config/manifest.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import type { DeploymentRequest } from "../plan/plan-deployment.js";
import { nextGeneration, readHistory, writeHistory } from "../rollout/history.js";
import { DeployLock, forceUnlock, whoAmI } from "../rollout/lock.js";
import { deleteSpec, readSpecAt, writeSpec } from "../rollout/publish.js";
import { pruneArchives, rollout, waitRemoved, type RolloutOptions } from "../rollout/rollout.js";
import { makePlan } from "./plan.js";

export async function breakLockIfAsked(ctx: Context, stack: string, force: boolean, out: Output): Promise<void> {
  if (!force) return;
  const who = await forceUnlock(ctx.consul, ctx.kv, stack);
  out.warn(who ? `Broke the deploy lock of ${stack} held by ${who}` : `No deploy lock was held on ${stack}`);
}

export async function deployCommand(
  ctx: Context,
  manifest: Manifest,
  req: DeploymentRequest,
  opts: RolloutOptions,
  out: Output,
): Promise<boolean> {
  const plan = makePlan(ctx, manifest, req);
  const label = [
    req.type === "service" ? plan.stack : req.type === "global" ? "global units" : `standalone stack ${plan.stack}`,
    req.version,
    req.group ? `(group ${req.group})` : null,
  ]
    .filter(Boolean)
    .join(" ");
  return rollout(
    ctx,
    {
      stack: plan.stack,
      environment: req.environment,
      deployment: plan.deployment,
      units: plan.units,
      archives: plan.archives,
      label,
    },
    opts,
    out,
  );
}

/** Removes the stack's units (or one group's) and its archives; waits for the agents to do it. */
export async function removeCommand(
  ctx: Context,
  stack: string,
  group: string | null,
  environment: string,
  out: Output,
  keepGenerations = DEFAULT_KEEP_GENERATIONS,
): Promise<boolean> {
  const t0 = Date.now();
  const lock = await DeployLock.acquire(ctx.consul, ctx.kv, stack, `remove ${stack}${group ? `:${group}` : ""}`);
  try {
    const { spec, modifyIndex } = await readSpecAt(ctx.consul, ctx.kv, stack);
    if (!spec) throw new HoustonError(`stack ${stack} is not deployed (no ${ctx.kv.spec(stack)})`);
    const removed = spec.units.filter((u) => group === null || u.group === group);
    if (removed.length === 0) throw new HoustonError(`stack ${stack} has no units in group ${group}`);
    for (const u of removed) out.info(`Destroying ${u.name}`);
    const left = spec.units.filter((u) => !removed.includes(u));
    const generation = nextGeneration(spec, await readHistory(ctx.consul, ctx.kv, stack));
    if (left.length)
      await writeSpec(
        ctx.consul,
        ctx.kv,
        { ...spec, generation, createdAt: new Date().toISOString(), units: left },
        modifyIndex,
        ctx.signer,
      );
    else await deleteSpec(ctx.consul, ctx.kv, stack, modifyIndex);
    const gone = await waitRemoved(
      ctx,
      stack,
      removed.map((u) => u.name),
      generation,
      out,
    );
    const record: HistoryRecord = {
      schema: SCHEMA_VERSION,
      stack,
      generation,
      environment,
      deployment: { ...spec.deployment, group },
      user: whoAmI(),
      startedAt: new Date(t0).toISOString(),
      finishedAt: new Date().toISOString(),
      durationMs: Date.now() - t0,
      result: "removed",
      message: `Removed ${removed.length} units of ${stack}${group ? ` group ${group}` : ""}`,
      units: removed,
      finalGeneration: left.length ? generation : null,
    };
    await writeHistory(ctx.consul, ctx.kv, record);
    await pruneArchives(
      ctx,
      stack,
      new Set(removed.flatMap((u) => (u.archive ? [u.archive] : []))),
      keepGenerations,
      out,
    );
    out.info(record.message);
    return gone;
  } finally {
    await lock.release();
  }
}

/** Redeploys an earlier successful deployment's units through the same rollout. */
export const DEFAULT_KEEP_GENERATIONS = 5;

export async function rollbackCommand(
  ctx: Context,
  stack: string,
  generation: number | null,
  opts: RolloutOptions,
  out: Output,
): Promise<boolean> {
  const history = await readHistory(ctx.consul, ctx.kv, stack);
  const ok = history.filter((h) => h.result === "success");
  const target = generation === null ? ok.at(-2) : history.find((h) => h.generation === generation);
  if (!target) {
    throw new HoustonError(
      generation === null
        ? `stack ${stack} has no earlier successful deployment to roll back to (see houston history ${stack})`
        : `stack ${stack} has no deployment at generation ${generation} (see houston history ${stack})`,
    );
  }
  if (target.result !== "success")
    throw new HoustonError(
      `generation ${target.generation} of ${stack} did not succeed (${target.result}); pick a successful one`,
    );
  for (const u of target.units) {
    if (u.archive && !(await ctx.consul.kvGet(ctx.kv.archiveMeta(u.archive)))) {
      const d = target.deployment;
      throw new HoustonError(
        `archive ${u.archive} of generation ${target.generation} was pruned from Consul (only the last --keep-generations successful deployments keep theirs), so it cannot be rolled back to as recorded; redeploy that version from its config instead (houston ${d.type}${d.type === "global" ? "" : ` ${d.name}`}${d.version ? ` ${d.version}` : ""})`,
      );
    }
  }
  out.info(
    `Rolling back ${stack} to generation ${target.generation} (${target.deployment.type} ${target.deployment.name}${target.deployment.version ? ` ${target.deployment.version}` : ""})`,
  );
  const label = `${stack} ${target.deployment.version ?? ""} (rollback to generation ${target.generation})`.replace(
    /\s+/g,
    " ",
  );
  return rollout(
    ctx,
    {
      stack,
      environment: target.environment,
      deployment: target.deployment,
      units: target.units.map(({ hosts: _h, ...u }) => u),
      archives: [],
      label,
    },
    opts,
    out,
  );
}
