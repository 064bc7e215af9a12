/**
 * The rollout's decisions (pure), as the agent's reconcileHost is for a host: from the request
 * and what is observed (the live spec, history, hosts) → a plan; from the plan and how far it
 * got → the next step. rollout.ts only carries steps out and reports what happened. Deploy,
 * rollback (a deploy of recorded units) and remove are requests to the same planner.
 */
import { HoustonError } from "../../shared/errors.js";
import type { Deployment, HistoryRecord, StackSpec, UnitSpec } from "../../shared/spec.js";
import { replacedUnits } from "../plan/diff.js";
import { nextGeneration } from "./history.js";
import { makeBatches, type HostView, type UnitTarget } from "./progress.js";

export class NoAgentsError extends HoustonError {}
export class UnplaceableUnitError extends HoustonError {}
export class NotDeployedError extends HoustonError {}

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
}

export interface Observed {
  live: StackSpec | null;
  history: HistoryRecord[];
  hosts: HostView[];
  /** the scheduler's placement preview (pure): which hosts each unit would go to */
  place: (units: UnitSpec[], hosts: HostView[]) => UnitTarget[];
}

export interface Batch {
  /** "Canary 1/3: a" etc.; null when there is one batch */
  title: string | null;
  canary: boolean;
  /** the hosts this batch adds */
  hosts: string[];
  /** the whole spec to write for this batch (new units narrowed to their hosts so far) */
  units: UnitSpec[];
  /** what to wait for: each new unit on the hosts so far (as previewed; the scheduler's
   * placements of the written generation are what the rollout then follows) */
  scope: UnitTarget[];
}

export interface RolloutPlan {
  request: RolloutRequest;
  firstGeneration: number;
  liveGeneration: number | null;
  warnings: string[];
  batches: Batch[];
  /** confirm the service in Consul's health API after each batch */
  confirm: boolean;
  /** on success: units to destroy, and the spec left (null: delete it) */
  replaced: string[];
  final: UnitSpec[] | null;
  /** on failure: the new units, and what to restore (null: delete the spec) */
  added: string[];
  restore: UnitSpec[] | null;
}

export function planRollout(req: RolloutRequest, seen: Observed, opts: PlanOptions): RolloutPlan {
  const before = seen.live;
  const base = {
    request: req,
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
      confirm: false,
      replaced: removed.map((u) => u.name),
      final: left.length ? left : null,
      added: [],
    };
  }
  if (seen.hosts.length === 0)
    throw new NoAgentsError("no Houston agents are registered in Consul (see `houston nodes`)");
  const targets = seen.place(req.units, seen.hosts);
  const targetHosts = [...new Set(targets.flatMap((t) => t.hosts))].sort();
  const warnings = seen.hosts
    .filter((h) => h.agent !== "passing" && targetHosts.includes(h.node))
    .map((h) => `houston-agent on ${h.node} is ${h.agent}: its units cannot be confirmed until it reports again`);
  const names = new Set(req.units.map((u) => u.name));
  const liveNames = new Set((before?.units ?? []).map((u) => u.name));
  const kept = (before?.units ?? []).filter((u) => !names.has(u.name));
  const hostBatches = makeBatches(targetHosts, opts.canary, opts.maxParallel);
  const cumulative: string[] = [];
  const batches = hostBatches.map((hosts, i): Batch => {
    cumulative.push(...hosts);
    const last = i === hostBatches.length - 1;
    const canary = i === 0 && opts.canary > 0;
    const so = [...cumulative];
    return {
      title: hostBatches.length > 1 ? `${canary ? "Canary" : "Batch"} ${i + 1}/${hostBatches.length}` : null,
      canary: canary && !last,
      hosts,
      // only units new to the stack are narrowed, each to its previewed hosts among the hosts so
      // far: one that is live already (same name) keeps running where it is, else a canary would
      // stop it on the other hosts
      units: [
        ...kept,
        ...req.units.map((u) =>
          last || liveNames.has(u.name)
            ? u
            : { ...u, hosts: (targets.find((t) => t.name === u.name)?.hosts ?? []).filter((h) => so.includes(h)) },
        ),
      ],
      scope: targets.map((t) => ({ name: t.name, hosts: t.hosts.filter((h) => so.includes(h)) })),
    };
  });
  const replaced = replacedUnits(kept, req.deployment.group);
  return {
    ...base,
    warnings,
    batches,
    confirm: req.deployment.type === "service" && !opts.skipConsul,
    replaced,
    final: [...kept.filter((u) => !replaced.includes(u.name)), ...req.units],
    added: req.units.filter((u) => !(before?.units ?? []).some((b) => b.name === u.name)).map((u) => u.name),
  };
}

export interface Failure {
  unit: string;
  host: string;
  reason: string;
}

/** How far a rollout got: what the loop tells the planner after each step. */
export interface RolloutProgress {
  written: number;
  confirmed: number;
  failure: Failure | null;
  /** the replaced units were removed (success), or the new ones restored away or kept (failure) */
  settled: boolean;
}

export const START: RolloutProgress = { written: 0, confirmed: 0, failure: null, settled: false };

export type RolloutStep =
  | { kind: "write-batch"; index: number; batch: Batch }
  | { kind: "follow-batch"; index: number; batch: Batch; confirm: boolean }
  | { kind: "prune"; replaced: string[]; units: UnitSpec[] | null }
  | { kind: "restore"; failure: Failure; added: string[]; units: UnitSpec[] | null }
  | { kind: "keep-failed"; failure: Failure; added: string[] }
  | { kind: "done"; ok: boolean; result: HistoryRecord["result"]; message: string };

export function nextStep(plan: RolloutPlan, p: RolloutProgress, noRemoval: boolean): RolloutStep {
  const req = plan.request;
  if (p.failure) {
    if (!p.settled) {
      return noRemoval
        ? { kind: "keep-failed", failure: p.failure, added: plan.added }
        : { kind: "restore", failure: p.failure, added: plan.added, units: plan.restore };
    }
    const f = p.failure;
    return {
      kind: "done",
      ok: false,
      result: noRemoval ? "failed" : "rolled-back",
      message: `Deployment of ${req.label} failed: ${f.unit} failed on ${f.host}: ${f.reason.split("\n")[0]}`,
    };
  }
  const batch = plan.batches[p.confirmed];
  if (batch && p.written === p.confirmed) return { kind: "write-batch", index: p.written, batch };
  if (batch) return { kind: "follow-batch", index: p.confirmed, batch, confirm: plan.confirm };
  if (!p.settled && plan.replaced.length > 0) return { kind: "prune", replaced: plan.replaced, units: plan.final };
  if (req.kind === "remove") {
    return {
      kind: "done",
      ok: true,
      result: "removed",
      message: `Removed ${plan.replaced.length} units of ${req.stack}${req.group ? ` group ${req.group}` : ""}`,
    };
  }
  const what = req.deployment.type === "service" ? " and its dependencies" : "";
  return { kind: "done", ok: true, result: "success", message: `Deployment of ${req.label}${what} successful.` };
}
