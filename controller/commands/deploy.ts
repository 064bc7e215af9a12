/**
 * Deploy-side commands: service / standalone / global deployments, remove, rollback, force-unlock.
 * The process edge of a rollout is here: SIGINT/SIGTERM/SIGHUP (the terminal closed) during one
 * record it in history, release its deploy lock, say where things stand and exit 130.
 */
import { HoustonError } from "../../shared/errors.js";
import type { Manifest } from "../config/manifest.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import type { DeploymentRequest } from "../plan/plan-deployment.js";
import { listHistory } from "../../shared/stores/history.js";
import { forceUnlock } from "../rollout/lock.js";
import { readSpec } from "../../shared/stores/specs.js";
import { rollout, type OnInterrupt, type RolloutOptions } from "../rollout/rollout.js";
import { NotDeployedError } from "../rollout/rollout-plan.js";
import { makePlan } from "./plan.js";

/** The exit code of a rollout interrupted by SIGINT, SIGTERM or SIGHUP (128 + SIGINT). */
export const INTERRUPTED_EXIT = 130;

/**
 * Ctrl-C, SIGTERM or SIGHUP (the terminal closed) during a rollout: the rollout records it in
 * history, gives its lock back at once (rather than after its TTL) and says where things stand;
 * then the process exits.
 */
function exitOnSignal(out: Output): OnInterrupt {
  return (stop) => {
    let stopping = false;
    const interrupted = (): void => {
      if (stopping) return; // a second signal while stopping: the first one finishes
      stopping = true;
      void stop().then((said) => {
        out.error(said);
        process.exit(INTERRUPTED_EXIT);
      });
    };
    const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
    for (const s of signals) process.once(s, interrupted);
    return () => {
      for (const s of signals) process.off(s, interrupted);
    };
  };
}

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
    exitOnSignal(out),
  );
}

/** Removes the stack's units (or one group's) and its archives: a request to the same planner. */
export async function removeCommand(
  ctx: Context,
  stack: string,
  group: string | null,
  environment: string,
  out: Output,
  keepGenerations = DEFAULT_KEEP_GENERATIONS,
): Promise<boolean> {
  const { spec } = await readSpec(ctx.consul, ctx.kv, stack);
  if (!spec) throw new NotDeployedError(`stack ${stack} is not deployed (no ${ctx.kv.spec(stack)})`);
  const input = {
    kind: "remove" as const,
    stack,
    environment,
    deployment: { ...spec.deployment, group },
    units: [],
    archives: [],
  };
  const opts: RolloutOptions = {
    delaySeconds: 5,
    maxTries: 15,
    timeoutSeconds: 600,
    skipConsul: true,
    noRemoval: false,
    maxParallel: null,
    canary: 0,
    minHealthySeconds: 0,
    keepGenerations,
  };
  return rollout(ctx, { ...input, label: `${stack}${group ? ` group ${group}` : ""}` }, opts, out, exitOnSignal(out));
}

/** The generation asked for cannot be rolled back to (none, not a success, archive pruned). */
export class RollbackUnavailableError extends HoustonError {}

export const DEFAULT_KEEP_GENERATIONS = 5;

export async function rollbackCommand(
  ctx: Context,
  stack: string,
  generation: number | null,
  opts: RolloutOptions,
  out: Output,
): Promise<boolean> {
  const history = await listHistory(ctx.consul, ctx.kv, stack);
  const ok = history.filter((h) => h.result === "success");
  const target = generation === null ? ok.at(-2) : history.find((h) => h.generation === generation);
  if (!target) {
    throw new RollbackUnavailableError(
      generation === null
        ? `stack ${stack} has no earlier successful deployment to roll back to (see houston history ${stack})`
        : `stack ${stack} has no deployment at generation ${generation} (see houston history ${stack})`,
    );
  }
  if (target.result !== "success")
    throw new RollbackUnavailableError(
      `generation ${target.generation} of ${stack} did not succeed (${target.result}); pick a successful one`,
    );
  for (const u of target.units) {
    if (u.archive && !(await ctx.consul.kvGet(ctx.kv.archiveMeta(u.archive)))) {
      const d = target.deployment;
      throw new RollbackUnavailableError(
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
    exitOnSignal(out),
  );
}
