/**
 * The rollout's plan (pure), as the agent's reconcileHost is for a host: from the request and
 * what is observed (the live spec, history, hosts) → a plan holding every decision and all the
 * policy (batches, what to confirm, how long a unit may take, what to do on failure).
 * rollout-steps.ts walks it step by step; rollout.ts only carries steps out. Deploy, rollback (a
 * deploy of recorded units) and remove are requests to the same planner.
 */
import { HoustonError } from "../../shared/errors.js";
import { isGlobal } from "../../shared/placement.js";
import { serviceTags, type Deployment, type HistoryRecord, type StackSpec, type UnitSpec } from "../../shared/spec.js";
import type { HostView, UnitTarget } from "../scheduler/targets.js";
import { replacedUnits } from "../plan/diff.js";
import { droppedDependencies } from "../plan/together.js";
import { answerLimitMs } from "./confirm.js";
import { nextGeneration } from "./history.js";
import { makeBatches } from "./progress.js";
import { batchWindow, deploymentWindows, type UnitWindow } from "../plan/watch-window.js";

export class NoAgentsError extends HoustonError {}
export class NotDeployedError extends HoustonError {}

/** How long agents get to carry out a prune or a restore before we say so and move on. */
const REMOVAL_WAIT_MS = 120_000;

export interface RolloutRequest {
  kind: "deploy" | "remove";
  stack: string;
  /** e.g. "example 7b7d061b" */
  label: string;
  deployment: Deployment;
  /** deploy: the deployment's units; remove: none */
  units: UnitSpec[];
  /** remove: only this group's units (null: all of the stack's) */
  group: string | null;
}

export interface PlanOptions {
  canary: number;
  maxParallel: number | null;
  skipConsul: boolean;
  /** on failure, leave the new units in place rather than restoring the previous generation */
  noRemoval: boolean;
  /** -d and -m: a unit may take delaySeconds × maxTries to become active */
  delaySeconds: number;
  maxTries: number;
  /** --min-healthy: every unit's window after it is active (null: each unit's own, see plan/watch-window.ts) */
  minHealthySeconds: number | null;
  /** the environment's min-healthy (manifest.yaml): the window of units that prove no readiness (null: --delay) */
  environmentMinHealthy?: number | null;
}

/** The one rule for how long one unit may take to become active (and a Consul check stay critical): -d × -m. */
export function perUnitMs(o: Pick<PlanOptions, "delaySeconds" | "maxTries">): number {
  return o.delaySeconds * o.maxTries * 1000;
}

/** How the rollout watches and what it does when something fails: decided once, here. */
export interface RolloutPolicy {
  /** the longest one unit may take to become active, and a Consul check to stay critical (-d × -m) */
  perUnitMs: number;
  /** each unit's window: how long it is watched after it is active (and confirmed), and why */
  windows: UnitWindow[];
  /** how long agents get to carry out a prune or a restore */
  removalWaitMs: number;
  /** on failure: restore the previous generation, or keep the new units (--no-removal) */
  onFailure: "restore" | "keep";
}

/** The service to confirm in Consul's health API after each batch: its unit, name and version tags. */
export interface ServiceCheck {
  unit: string;
  service: string;
  tags: string[];
  /** its HTTP check answering with an error this long fails the rollout (3 checks in a row) */
  answerLimitMs: number;
  /** who registers it: the agents ([X-Houston] ServicePort=), or the unit itself (the seed's way) */
  registeredBy: "houston" | "unit";
}

export interface Observed {
  live: StackSpec | null;
  history: HistoryRecord[];
  hosts: HostView[];
  /** the scheduler's placement preview (pure): which hosts each unit would go to */
  place: (units: UnitSpec[], hosts: HostView[]) => UnitTarget[];
  /** the scheduler runs global units too (fleet): a batch of only global units awaits placement */
  placesGlobal?: boolean;
}

export interface Batch {
  /** "Canary 1/3: a" etc.; null when there is one batch */
  title: string | null;
  canary: boolean;
  /** the hosts this batch adds */
  hosts: string[];
  /** stop then start: on which of this batch's hosts which live unit the new one replaces */
  replacing: { host: string; unit: string; by: string }[];
  /** the whole spec to write for this batch (new units narrowed to their hosts so far) */
  units: UnitSpec[];
  /** what to wait for: each new unit on the hosts so far (as previewed; the scheduler's
   * placements of the written generation are what the rollout then follows) */
  scope: UnitTarget[];
  /** the units in scope whose placement the scheduler decides (empty: every one is global, each
   * agent places it itself, so the preview is where they go and there is nothing to wait for) */
  placing: UnitSpec[];
  /** after it is active (and confirmed) the batch is watched this long: its units' longest window */
  watchSeconds: number;
}

export interface RolloutPlan {
  request: RolloutRequest;
  firstGeneration: number;
  liveGeneration: number | null;
  warnings: string[];
  batches: Batch[];
  /** confirm this service in Consul's health API after each batch (null: nothing to confirm) */
  confirm: ServiceCheck | null;
  policy: RolloutPolicy;
  /** on success: units to destroy, and the spec left (null: delete it) */
  replaced: string[];
  final: UnitSpec[] | null;
  /** on failure: the new units, and what to restore (null: delete the spec) */
  added: string[];
  restore: UnitSpec[] | null;
}

export function planRollout(req: RolloutRequest, seen: Observed, opts: PlanOptions): RolloutPlan {
  const before = seen.live;
  const svc = req.units.find((u) => u.role === "service");
  const confirm: ServiceCheck | null =
    req.kind === "deploy" && req.deployment.type === "service" && !opts.skipConsul && svc
      ? {
          unit: svc.name,
          service: svc.service?.name ?? req.stack,
          tags: serviceTags(svc.version, svc.group),
          answerLimitMs: answerLimitMs(svc.service?.interval ?? "2s"),
          registeredBy: svc.service ? "houston" : "unit",
        }
      : null;
  const windows = deploymentWindows(req.units, req.deployment.type, {
    flag: opts.minHealthySeconds,
    environment: opts.environmentMinHealthy ?? null,
    delaySeconds: opts.delaySeconds,
    skipConsul: opts.skipConsul,
  });
  const watchSeconds = batchWindow(windows).seconds;
  const base = {
    request: req,
    policy: {
      perUnitMs: perUnitMs(opts),
      windows,
      removalWaitMs: REMOVAL_WAIT_MS,
      onFailure: opts.noRemoval ? ("keep" as const) : ("restore" as const),
    },
    firstGeneration: nextGeneration(before, seen.history),
    liveGeneration: before?.generation ?? null,
    restore: before?.units ?? null,
  };
  if (req.kind === "remove") {
    if (!before) throw new NotDeployedError(`stack ${req.stack} is not deployed`);
    const removed = before.units.filter((u) => req.group === null || u.group === req.group);
    if (removed.length === 0) throw new NotDeployedError(`stack ${req.stack} has no units in group ${req.group}`);
    const left = before.units.filter((u) => !removed.includes(u));
    return {
      ...base,
      warnings: [],
      batches: [],
      confirm: null,
      replaced: removed.map((u) => u.name),
      final: left.length ? left : null,
      added: [],
    };
  }
  if (seen.hosts.length === 0)
    throw new NoAgentsError("no Houston agents are registered in Consul (see `houston nodes`)");
  const targets = seen.place(req.units, seen.hosts);
  const targetHosts = [...new Set(targets.flatMap((t) => t.hosts))].sort();
  const warnings = [
    ...seen.hosts
      .filter((h) => h.agent !== "passing" && targetHosts.includes(h.node))
      .map((h) => `houston-agent on ${h.node} is ${h.agent}: its units cannot be confirmed until it reports again`),
    ...droppedDependencies(req.units, new Map(targets.map((t) => [t.name, t.hosts]))),
  ];
  const names = new Set(req.units.map((u) => u.name));
  const liveNames = new Set((before?.units ?? []).map((u) => u.name));
  // a live unit stays as it runs: what it replaced when it was deployed is done with (kept, it
  // would replace the very version this deployment brings back: both dropped, the host empty)
  const kept = (before?.units ?? []).filter((u) => !names.has(u.name)).map(({ replaces: _done, ...u }) => u);
  // each unit carries its window: its host reports when it has stood it (agent/unit-states.ts)
  const windowOf = new Map(windows.map((w) => [w.unit, w.seconds]));
  const newUnits = withReplaces(req.units, kept).map((u) => {
    const { window: _old, ...rest } = u;
    const seconds = windowOf.get(u.name) ?? 0;
    return seconds > 0 ? { ...rest, window: seconds } : rest;
  });
  // stop then start: by default one host at a time, so the other hosts keep serving
  const replacing = newUnits.some((u) => u.replaces?.length);
  const maxParallel = replacing && opts.maxParallel === null ? 1 : opts.maxParallel;
  const hostBatches = makeBatches(targetHosts, opts.canary, maxParallel);
  const cumulative: string[] = [];
  const batches = hostBatches.map((hosts, i): Batch => {
    cumulative.push(...hosts);
    const last = i === hostBatches.length - 1;
    const canary = i === 0 && opts.canary > 0;
    const so = [...cumulative];
    const inScope = new Set(targets.map((t) => t.name));
    const units = [
      ...kept,
      ...newUnits.map((u) =>
        last || liveNames.has(u.name)
          ? u
          : { ...u, hosts: (targets.find((t) => t.name === u.name)?.hosts ?? []).filter((h) => so.includes(h)) },
      ),
    ];
    const placing = units.filter((u) => inScope.has(u.name));
    return {
      title: hostBatches.length > 1 ? `${canary ? "Canary" : "Batch"} ${i + 1}/${hostBatches.length}` : null,
      canary: canary && !last,
      hosts,
      replacing: replacing ? replacingOn(newUnits, targets, hosts) : [],
      // only units new to the stack are narrowed, each to its previewed hosts among the hosts so
      // far: one that is live already (same name) keeps running where it is, else a canary would
      // stop it on the other hosts
      units,
      scope: targets.map((t) => ({ name: t.name, hosts: t.hosts.filter((h) => so.includes(h)) })),
      placing: placing.every(isGlobal) && !seen.placesGlobal ? [] : placing,
      watchSeconds,
    };
  });
  const replaced = replacedUnits(kept, req.deployment.group);
  return {
    ...base,
    warnings,
    batches,
    confirm,
    replaced,
    final: [...kept.filter((u) => !replaced.includes(u.name)), ...newUnits],
    added: req.units.filter((u) => !(before?.units ?? []).some((b) => b.name === u.name)).map((u) => u.name),
  };
}

/**
 * A new unit that upgrades by replacement names the live units it replaces (same component, group
 * and role, another name): on a host where both would run, the agent stops those first.
 */
export function withReplaces(units: UnitSpec[], live: UnitSpec[]): UnitSpec[] {
  return units.map((u) => {
    const { replaces: _old, ...rest } = u;
    if (u.upgrade !== "replace") return rest;
    const old = live.filter(
      (l) => l.name !== u.name && l.component === u.component && l.group === u.group && l.role === u.role,
    );
    return old.length ? { ...rest, replaces: old.map((l) => l.name) } : rest;
  });
}

/** What a batch replaces where (as previewed): for `status` and the rollout's output. */
function replacingOn(units: UnitSpec[], targets: UnitTarget[], hosts: string[]): Batch["replacing"] {
  return units.flatMap((u) =>
    (targets.find((t) => t.name === u.name)?.hosts ?? [])
      .filter((h) => hosts.includes(h))
      .flatMap((host) => (u.replaces ?? []).map((unit) => ({ host, unit, by: u.name }))),
  );
}
