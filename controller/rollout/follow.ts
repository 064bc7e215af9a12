/**
 * Following a rollout on the fleet (I/O, through the scheduler): where a batch's units were placed,
 * units becoming active host by host, the service's checks in Consul, the batch watched for its
 * window (plan/watch-window.ts), and the archives left to prune (removals: removed.ts). Each
 * returns what it saw; rollout-steps.ts decides what comes next.
 */
import type { Consul } from "../../shared/consul.js";
import { errorText } from "../../shared/errors.js";
import type { StatusReport } from "../../shared/spec.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import { TimeoutError } from "../scheduler/agent-reports.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { HostView, UnitTarget } from "../scheduler/targets.js";
import { describeHost, httpErrorAnswer } from "./confirm.js";
import { followHealth } from "./health-watch.js";
import { placedUnlessRefused } from "./placed.js";
import { readHistory } from "./read-back.js";
import { listSpecs } from "../../shared/stores/specs.js";
import {
  NOTICE_AFTER_MS,
  archivesToKeep,
  decide,
  notStood,
  noteRestarts,
  placementRefusal,
  windowNames,
  type WatchedWindow,
  unhealthy,
  type RestartBaseline,
} from "./progress.js";
import type { Batch, ServiceCheck } from "./rollout-plan.js";
import type { Failure } from "./rollout-steps.js";

/** One batch being watched: what every phase after its write follows. */
export interface BatchWatch {
  stack: string;
  /** the generation written for this batch */
  generation: number;
  /** the batch's units and the hosts they went to */
  scope: UnitTarget[];
  /** when the rollout's --timeout runs out */
  deadline: number;
  /** the plan's bound on one unit (and on a Consul check staying critical) */
  perUnitMs: number;
  /** hosts whose agent was not passing when the rollout began, and its state (named in a timeout) */
  unwell: ReadonlyMap<string, string>;
  /** each unit's NRestarts when first reported in this rollout: a restart is counted from there */
  restarts: RestartBaseline;
}

/**
 * The batch's units where the scheduler put them in the written generation (the plan's scope is
 * a preview); a unit it could not place fails the rollout, saying what no machine satisfies. A
 * previewed host's agent or the scheduler's that refused the generation's spec (the scheduler
 * agent refuses to place it too) fails it as soon as its report says so (progress.ts placementRefusal).
 */
export async function awaitPlacement(
  scheduler: Scheduler,
  w: Pick<BatchWatch, "stack" | "generation" | "deadline">,
  batch: Batch,
  hosts: HostView[],
  /** the scheduler role's holder (its session's node), whose refusal fails the placement too; who
   * places, as the progress line says it */
  role: { holder: string | null; who: string },
  out: Output,
): Promise<{ scope: UnitTarget[]; failure: Failure | null }> {
  const unit = batch.placing[0]?.name ?? "?";
  // a placement usually takes a moment; a longer wait is said (off a terminal, again every 10 s)
  const notice = setTimeout(
    () => out.progress(`waiting for ${role.who} to place ${batch.placing.map((u) => u.name).join(", ")}`),
    NOTICE_AFTER_MS,
  );
  try {
    const p = await placedUnlessRefused(scheduler, { ...w, units: batch.placing, hosts }, (reports) =>
      placementRefusal(w.generation, reports, batch.scope, role.holder),
    );
    if (p.kind === "refused") return { scope: batch.scope, failure: { unit, host: p.host, reason: p.reason } };
    const first = p.unplaced[0];
    return {
      scope: p.targets,
      failure: first ? { unit: first.unit, host: "any machine", reason: first.reason } : null,
    };
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    return { scope: batch.scope, failure: { unit, host: "-", reason: err.message } };
  } finally {
    clearTimeout(notice);
    out.progress("");
  }
}

/** Follows the units in order, logging each as it starts and completes. Returns the failure, if any. */
export async function followUnits(scheduler: Scheduler, w: BatchWatch, out: Output): Promise<Failure | null> {
  const units = w.scope;
  let current = 0;
  let since = Date.now();
  let last = "";
  /** the hosts the unit followed now is not active on yet (a timeout names these, not all of its hosts) */
  let pendingOn: string[] = [];
  if (units[0]) out.info(`Deploying ${units[0].name}`);
  for (;;) {
    const until = Math.min(w.deadline, since + w.perUnitMs);
    let step: { failed: Failure | null; at: number };
    try {
      step = await scheduler.follow(
        w.stack,
        until,
        (reports) => {
          noteRestarts(w.restarts, units, w.generation, reports);
          const d = decide(units, w.generation, reports);
          if (d.kind === "failed") return { failed: { unit: d.unit, host: d.host, reason: d.reason }, at: current };
          last = d.kind === "waiting" ? `${d.unit} not active yet on ${d.pending.join(", ")}` : "";
          pendingOn = d.kind === "waiting" ? d.pending : [];
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
      const on = pendingOn.length ? pendingOn : (unit?.hosts ?? []);
      // an agent that stopped reporting during the rollout is named as one that was away from its start
      const agents = new Map((await scheduler.hosts().catch(() => [])).map((h) => [h.node, h.agent]));
      const sick = on.flatMap((h) => {
        const state = w.unwell.get(h) ?? (agents.get(h) !== "passing" ? (agents.get(h) ?? "not registered") : null);
        return state ? [`houston-agent on ${h} is ${state}`] : [];
      });
      return {
        unit: unit?.name ?? "?",
        host: on.join(", ") || "?",
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

/** The first failed unit of the batch in these reports, as a rollout failure. */
function failedUnit(w: BatchWatch, reports: ReadonlyMap<string, StatusReport>): Failure | null {
  noteRestarts(w.restarts, w.scope, w.generation, reports);
  const d = decide(w.scope, w.generation, reports);
  return d.kind === "failed" ? { unit: d.unit, host: d.host, reason: d.reason } : null;
}

/** The first unit of the batch that failed, restarted or left active in these reports. */
function unwellUnit(w: BatchWatch, reports: ReadonlyMap<string, StatusReport>): Failure | null {
  noteRestarts(w.restarts, w.scope, w.generation, reports);
  return unhealthy(w.scope, w.generation, reports, w.restarts);
}

/**
 * The service must be passing in Consul with its version tag on every host it runs on. Meanwhile
 * the agents' reports are still followed as the batch's window follows them (this phase counts
 * towards the window): a unit that fails, restarts or leaves active now fails the rollout at once,
 * with its Result and log lines, and a check that stays critical longer than one unit may take fails
 * it then, quoting the check's output.
 */
export async function confirmService(
  consul: Consul,
  scheduler: Scheduler,
  w: BatchWatch,
  svc: ServiceCheck,
  out: Output,
  firstBatch = true,
): Promise<Failure | null> {
  const name = svc.service;
  const nodes = w.scope.find((t) => t.name === svc.unit)?.hosts ?? [];
  const selfRegistered = `the unit registers it itself (${svc.unit} declares no [X-Houston] ServicePort=); -s skips this check`;
  if (svc.registeredBy === "unit" && firstBatch) out.info(`${name} in Consul: ${selfRegistered}`);
  const ac = new AbortController();
  const seen = new Map<string, string>();
  const health = followHealth(consul, name, svc.tags, nodes, {
    deadline: w.deadline,
    limitMs: w.perUnitMs,
    answerLimitMs: svc.answerLimitMs,
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
            unit: svc.unit,
            host: d.host.node,
            reason:
              d.host.status === "missing"
                ? `it was ${d.host.output} after ${Math.round(d.criticalForMs / 1000)}s${svc.registeredBy === "unit" ? `: ${selfRegistered}` : ""}`
                : d.answered
                  ? `its check answered ${httpErrorAnswer(d.host.output) ?? d.host.output} (for ${Math.round(d.criticalForMs / 1000)}s)`
                  : `its Consul check stayed critical for ${Math.round(d.criticalForMs / 1000)}s: ${d.host.output || "(no output in Consul's catalog yet)"}`,
          },
    (err: unknown): Failure | null => {
      if (err instanceof TimeoutError)
        return { unit: svc.unit, host: nodes.join(", "), reason: `${errorText(err)} (confirm with Consul timed out)` };
      throw err;
    },
  );
  const unitFailure = scheduler
    .follow(
      w.stack,
      w.deadline,
      // watched as the window watches (failed, restarted, left active): the window overlaps this phase
      (reports) => failedUnit(w, reports) ?? unwellUnit(w, reports) ?? undefined,
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
  out.info(`${svc.unit} has started`);
  out.info("Validated service is running with Consul");
  return null;
}

/**
 * Units can fail after they became active: a Type=simple unit is active as soon as it forks. The
 * batch is watched for its window (its units' longest, see plan/watch-window.ts; blocking queries, no
 * polling), counted from `since`, when the batch was seen active (the confirm phase watched it
 * the same way meanwhile): a unit that fails, restarts or leaves active fails the rollout at once.
 * A window of 0 (every unit proved readiness), or one that passed while confirming, is one more look.
 */
export async function watchHealthy(
  scheduler: Scheduler,
  w: BatchWatch,
  window: WatchedWindow,
  out: Output,
): Promise<Failure | null> {
  const failure = await watchWindow(scheduler, w, window, out);
  return failure ?? (window.seconds > 0 ? await awaitStood(scheduler, w, window.seconds, out) : null);
}

/** The window as the controller counts it, from when it saw the batch active. */
async function watchWindow(
  scheduler: Scheduler,
  w: BatchWatch,
  window: WatchedWindow,
  out: Output,
): Promise<Failure | null> {
  const reports = async (): Promise<ReadonlyMap<string, StatusReport>> =>
    (await scheduler.reports()).get(w.stack) ?? new Map();
  const seconds = window.seconds;
  const now = Date.now();
  const until = (window.since ?? now) + seconds * 1000;
  const names = windowNames(w.scope, window);
  if (seconds > 0 && until <= now) out.info(`Watched ${names} while confirming`);
  if (seconds <= 0 || until <= now) return unwellUnit(w, await reports());
  const passed = (now - (window.since ?? now)) / 1000;
  out.info(`Watching ${names}${passed >= 0.1 ? `: ${passed.toFixed(1)}s of it already, while confirming` : ""}`);
  try {
    return await scheduler.follow(
      w.stack,
      Math.min(until, w.deadline),
      (r) => unwellUnit(w, r) ?? undefined,
      () => "",
    );
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    if (until > w.deadline)
      return {
        unit: w.scope.map((u) => u.name).join(", "),
        host: [...new Set(w.scope.flatMap((u) => u.hosts))].join(", "),
        reason: `--timeout ran out while watching the units for their window of ${seconds}s`,
      };
    return unwellUnit(w, await reports());
  }
}

/**
 * Then each host's word that its units stood their window on its own clock (a report late by a
 * second could otherwise hide a death near the window's end): followed until every unit has
 * stood, failed or restarted, or one unit's bound (-d × -m) passes without that report.
 */
async function awaitStood(scheduler: Scheduler, w: BatchWatch, seconds: number, out: Output): Promise<Failure | null> {
  // the follow's first look is at the reports as they are: nothing to wait for ends it at once
  let waiting: { unit: string; hosts: string[] }[] = [];
  const text = () =>
    `waiting for ${waiting.map((x) => `${x.hosts.join(", ")} to report that ${x.unit} stood its window`).join("; ")} (on the host's clock)`;
  const started = Date.now();
  try {
    return await scheduler.follow(
      w.stack,
      Math.min(w.deadline, started + w.perUnitMs),
      (reports): Failure | null | undefined => {
        const failure = unwellUnit(w, reports);
        if (failure) return failure;
        waiting = notStood(w.scope, w.generation, reports);
        if (waiting.length === 0) return null;
        out.progress(text());
        return undefined;
      },
      text,
    );
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    const first = waiting[0];
    return {
      unit: first?.unit ?? "?",
      host: first?.hosts.join(", ") ?? "?",
      reason: `no report that it stood its window came ${Math.round((Date.now() - started) / 1000)}s after the batch's ${seconds}s had passed on the controller's count (${err.message})`,
    };
  } finally {
    out.progress("");
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
  // with signing on, records that do not verify name no archive to keep or delete (said before)
  const { records: history } = await readHistory(ctx, stack, null);
  const keep = archivesToKeep(history, keepGenerations);
  const all = new Set([
    ...candidates,
    ...history.flatMap((h) => h.units.flatMap((u) => (u.archive ? [u.archive] : []))),
  ]);
  // an unreadable spec might reference anything: then keep every candidate
  const { specs, unreadable } = await listSpecs(ctx.consul, ctx.kv);
  if (unreadable.length > 0) return;
  for (const spec of specs) for (const u of spec.units) if (u.archive) keep.add(u.archive);
  const present = new Set(await ctx.consul.kvKeys(ctx.kv.archives, "/"));
  for (const sha of all) {
    if (keep.has(sha) || !present.has(ctx.kv.archive(sha))) continue;
    await ctx.consul.kvDeletePrefix(ctx.kv.archive(sha));
    out.info(`Removed archive ${sha.slice(0, 12)} from Consul`);
  }
}
