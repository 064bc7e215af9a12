/**
 * Following a rollout on the fleet (I/O, through the scheduler): units becoming active host by
 * host, the service's checks in Consul, removals, and the archives left to prune. Each returns
 * what it saw; rollout-plan.ts decides what comes next.
 */
import { errorText } from "../../shared/errors.js";
import { StackSpecSchema, serviceTags, type StatusReport } from "../../shared/spec.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import { describeHost } from "./confirm.js";
import { TimeoutError, followHealth } from "./fleet-view.js";
import { readHistory } from "./history.js";
import { archivesToKeep, decide, removalPending, unhealthy, type UnitTarget } from "./progress.js";
import type { Failure } from "./rollout-plan.js";
import type { RolloutInput, RolloutOptions } from "./rollout.js";

/** How long agents get to carry out a prune or a restore before we say so and move on. */
const REMOVAL_WAIT_MS = 120_000;

/** Follows the units in order, logging each as it starts and completes. Returns the failure, if any. */
export async function followUnits(
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
      step = await ctx.scheduler.follow(
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
export async function confirmService(
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
            reason:
              d.host.status === "missing"
                ? `it was ${d.host.output} after ${Math.round(d.criticalForMs / 1000)}s`
                : `its Consul check stayed critical for ${Math.round(d.criticalForMs / 1000)}s: ${d.host.output || "(no output in Consul's catalog yet)"}`,
          },
    (err: unknown): Failure | null => {
      if (err instanceof TimeoutError)
        return { unit: svc.name, host: nodes.join(", "), reason: `${errorText(err)} (confirm with Consul timed out)` };
      throw err;
    },
  );
  const unitFailure = ctx.scheduler
    .follow(
      input.stack,
      deadline,
      (reports) => {
        const d = decide(scope, generation, reports);
        return d.kind === "failed" ? { unit: d.unit, host: d.host, reason: d.reason } : undefined;
      },
      () => "",
      ac.signal,
    )
    .catch(() => new Promise<Failure | null>(() => undefined)); // ends with the health watch
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

/**
 * Units can fail after they became active: a Type=simple unit is active as soon as it forks. By
 * default one more look before the batch counts as done; with --min-healthy N the batch is watched
 * for N seconds (blocking queries, no polling), and a unit that fails or leaves active meanwhile
 * fails the rollout at once.
 */
export async function watchHealthy(
  ctx: Context,
  stack: string,
  scope: UnitTarget[],
  generation: number,
  seconds: number,
  deadline: number,
  out: Output,
): Promise<Failure | null> {
  const reports = async (): Promise<ReadonlyMap<string, StatusReport>> =>
    (await ctx.scheduler.reports()).get(stack) ?? new Map();
  if (seconds <= 0) {
    const d = decide(scope, generation, await reports());
    return d.kind === "failed" ? { unit: d.unit, host: d.host, reason: d.reason } : null;
  }
  const until = Date.now() + seconds * 1000;
  out.info(`Watching ${scope.map((u) => u.name).join(", ")} for ${seconds}s (--min-healthy)`);
  try {
    return await ctx.scheduler.follow(
      stack,
      Math.min(until, deadline),
      (r) => unhealthy(scope, generation, r) ?? undefined,
      () => "",
    );
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    if (until > deadline)
      return {
        unit: scope.map((u) => u.name).join(", "),
        host: [...new Set(scope.flatMap((u) => u.hosts))].join(", "),
        reason: `--timeout ran out while watching the units for --min-healthy ${seconds}s`,
      };
    return unhealthy(scope, generation, await reports());
  }
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
    await ctx.scheduler.follow(
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
