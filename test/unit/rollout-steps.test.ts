/**
 * Each rollout phase on its own, as tables: a progress → the step nextStep names, and a phase's
 * outcome → the progress advance() makes of it. rollout-plan.test.ts runs whole rollouts.
 */
import { describe, expect, it } from "vitest";
import { PLAN_OPTS } from "../helpers/rollout.js";
import { planRollout, type PlanOptions, type RolloutPlan } from "../../controller/rollout/rollout-plan.js";
import {
  advance,
  nextStep,
  start,
  type Failure,
  type Outcome,
  type Phase,
  type RolloutProgress,
} from "../../controller/rollout/rollout-steps.js";
import { NO_PLACEMENTS, previewTargets, type HostView } from "../../controller/scheduler/targets.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

const unit = (name: string, version: string, global = true): UnitSpec => ({
  name: `${name}@${version}.service`,
  stack: "web",
  component: name === "web" ? null : name,
  group: null,
  version,
  role: name === "web" ? "service" : "dependency",
  text: "",
  placements: [{ global, metadata: {} }],
});
const hosts: HostView[] = ["a", "b"].map((node) => ({ node, meta: {}, agent: "passing" }));
const live: StackSpec = {
  schema: 1,
  stack: "web",
  generation: 4,
  environment: "t",
  createdAt: "",
  deployment: { type: "service", name: "web", version: "1", group: null },
  units: [unit("web", "1")],
};
const OPTS = PLAN_OPTS;
function plan(o: Partial<PlanOptions> & { units?: UnitSpec[]; type?: "service" | "standalone" } = {}): RolloutPlan {
  const units = o.units ?? [unit("web", "2")];
  return planRollout(
    {
      kind: "deploy",
      stack: "web",
      label: "web 2",
      deployment: { type: o.type ?? "service", name: "web", version: "2", group: null },
      units,
      group: null,
    },
    { live, history: [], hosts, place: (us, hs) => previewTargets(us, hs, NO_PLACEMENTS) },
    { ...OPTS, ...o },
  );
}
const at = (phase: Phase, p: Partial<RolloutProgress> = {}): RolloutProgress => ({
  phase,
  batch: 0,
  scope: [],
  failure: null,
  removalComplete: true,
  ...p,
});
const crash: Failure = { unit: "web@2.service", host: "a", reason: "exit-code" };
const SCOPE = [{ name: "web@2.service", hosts: ["b"] }];

describe("the plan holds the policy", () => {
  it("the per-unit bound is -d × -m, computed once", () => expect(plan().policy.perUnitMs).toBe(75_000));
  it("--min-healthy, --no-removal and the wait for removals", () => {
    const p = plan({ minHealthySeconds: 30, noRemoval: true });
    expect(p.policy).toEqual({
      perUnitMs: 75_000,
      windows: [{ unit: "web@2.service", seconds: 30, why: "30s: --min-healthy" }],
      removalWaitMs: 120_000,
      onFailure: "keep",
    });
    expect(p.batches.map((b) => b.watchSeconds)).toEqual([30]);
  });
  it("what to confirm in Consul: a service's unit, name and version tag; nothing otherwise", () => {
    // an HTTP check answering with an error fails after 3 of its runs (2 s apart by default)
    expect(plan().confirm).toEqual({
      unit: "web@2.service",
      service: "web",
      tags: ["version:2"],
      answerLimitMs: 6000,
      registeredBy: "unit",
    });
    expect(plan({ skipConsul: true }).confirm).toBeNull();
    expect(plan({ type: "standalone" }).confirm).toBeNull();
  });
  it("which units to wait on the scheduler for: none when every one is global", () => {
    expect(plan().batches[0]!.placing).toEqual([]);
    expect(plan({ units: [unit("web", "2", false)] }).batches[0]!.placing.map((u) => u.name)).toEqual([
      "web@2.service",
    ]);
  });
});

describe("start", () => {
  it("a deploy begins with its first batch's write", () => expect(start(plan())).toEqual(at("write-batch")));
  it("a removal (no batches) begins with the prune", () => {
    const removal = planRollout(
      { kind: "remove", stack: "web", label: "web", deployment: live.deployment, units: [], group: null },
      { live, history: [], hosts: [], place: () => [] },
      OPTS,
    );
    expect(start(removal).phase).toBe("prune");
  });
});

describe("nextStep: the phase names the step", () => {
  const p = plan({ minHealthySeconds: 7 });
  const cases: [Phase, Partial<RolloutProgress>, object][] = [
    ["write-batch", {}, { kind: "write-batch", index: 0 }],
    ["await-placement", {}, { kind: "await-placement", index: 0 }],
    ["await-active", { scope: SCOPE }, { kind: "await-active", scope: SCOPE }],
    ["confirm", { scope: SCOPE }, { kind: "confirm", scope: SCOPE, service: p.confirm }],
    ["watch", { scope: SCOPE }, { kind: "watch", scope: SCOPE, seconds: 7, since: null }],
    ["watch", { scope: SCOPE, activeAt: 1000 }, { kind: "watch", seconds: 7, since: 1000 }],
    ["prune", {}, { kind: "prune", replaced: ["web@1.service"], wait: false }],
    ["restore", { failure: crash }, { kind: "restore", failure: crash, added: ["web@2.service"], units: live.units }],
    ["keep-failed", { failure: crash }, { kind: "keep-failed", failure: crash, added: ["web@2.service"] }],
    ["done", {}, { kind: "done", ok: true, result: "success" }],
  ];
  for (const [phase, progress, want] of cases)
    it(phase, () => expect(nextStep(p, at(phase, progress))).toMatchObject(want));
  it("a failure phase without a failure is a bug, not a step", () =>
    expect(() => nextStep(p, at("restore"))).toThrow(/without a failure/));
});

describe("advance: each phase's outcome → the next phase", () => {
  const confirmed = plan();
  const unconfirmed = plan({ skipConsul: true });
  const placing = plan({ units: [unit("web", "2", false)] });
  const batches = plan({ canary: 1 });
  const keep = plan({ noRemoval: true });
  const cases: [string, RolloutPlan, RolloutProgress, Outcome, Partial<RolloutProgress>][] = [
    [
      "write-batch, every unit global → await-active on the previewed scope",
      confirmed,
      at("write-batch"),
      { kind: "write-batch" },
      { phase: "await-active", scope: confirmed.batches[0]!.scope },
    ],
    [
      "write-batch, units the scheduler places → await-placement",
      placing,
      at("write-batch"),
      { kind: "write-batch" },
      { phase: "await-placement" },
    ],
    [
      "await-placement → await-active where they were placed",
      placing,
      at("await-placement"),
      { kind: "await-placement", scope: SCOPE, failure: null },
      { phase: "await-active", scope: SCOPE },
    ],
    [
      "await-placement, a unit not placed → restore",
      placing,
      at("await-placement"),
      { kind: "await-placement", scope: [], failure: crash },
      { phase: "restore", failure: crash },
    ],
    [
      "await-active → confirm (a service)",
      confirmed,
      at("await-active"),
      { kind: "await-active", failure: null },
      { phase: "confirm" },
    ],
    [
      "await-active → watch (nothing to confirm)",
      unconfirmed,
      at("await-active"),
      { kind: "await-active", failure: null },
      { phase: "watch" },
    ],
    [
      "await-active, failed → restore",
      confirmed,
      at("await-active"),
      { kind: "await-active", failure: crash },
      { phase: "restore", failure: crash },
    ],
    [
      "await-active, failed with --no-removal → keep-failed",
      keep,
      at("await-active"),
      { kind: "await-active", failure: crash },
      { phase: "keep-failed", failure: crash },
    ],
    ["confirm → watch", confirmed, at("confirm"), { kind: "confirm", failure: null }, { phase: "watch" }],
    [
      "confirm, failed → restore",
      confirmed,
      at("confirm"),
      { kind: "confirm", failure: crash },
      { phase: "restore", failure: crash },
    ],
    [
      "watch, more batches → the next batch's write",
      batches,
      at("watch", { scope: SCOPE }),
      { kind: "watch", failure: null },
      { phase: "write-batch", batch: 1, scope: [] },
    ],
    [
      "watch, the last batch, units replaced → prune",
      confirmed,
      at("watch"),
      { kind: "watch", failure: null },
      { phase: "prune", batch: 1 },
    ],
    [
      "watch, failed → restore",
      confirmed,
      at("watch"),
      { kind: "watch", failure: crash },
      { phase: "restore", failure: crash },
    ],
    [
      "await-active → confirm, the window counting from when the batch was seen active",
      confirmed,
      at("await-active"),
      { kind: "await-active", failure: null, at: 1234 },
      { phase: "confirm", activeAt: 1234 },
    ],
    [
      "watch, more batches → the next batch's window counts from its own activation",
      batches,
      at("watch", { activeAt: 1234 }),
      { kind: "watch", failure: null },
      { phase: "write-batch", activeAt: null },
    ],
    [
      "prune (a removal) → done, remembering whether the removal completed",
      confirmed,
      at("prune"),
      { kind: "prune", removalComplete: false },
      { phase: "done", removalComplete: false },
    ],
    [
      "prune (a deploy's, written only) → done, the replaced units to confirm after the announcement",
      confirmed,
      at("prune"),
      { kind: "prune", removalComplete: "written" },
      { phase: "done", removalComplete: true, removalPending: ["web@1.service"] },
    ],
    ["restore → done", confirmed, at("restore", { failure: crash }), { kind: "restore" }, { phase: "done" }],
    ["keep-failed → done", keep, at("keep-failed", { failure: crash }), { kind: "keep-failed" }, { phase: "done" }],
  ];
  for (const [title, p, progress, outcome, want] of cases)
    it(title, () => expect(advance(p, progress, outcome)).toMatchObject(want));
  it("an outcome of another phase than the one in hand is a bug", () =>
    expect(() => advance(confirmed, at("confirm"), { kind: "watch", failure: null })).toThrow(/at confirm/));
});

describe("done: what the rollout comes to", () => {
  it("a failure restored: rolled back, the reason's first line", () => {
    const d = nextStep(plan(), at("done", { failure: { ...crash, reason: "exit-code\nlog" } }));
    expect(d).toEqual({
      kind: "done",
      ok: false,
      result: "rolled-back",
      message: "Deployment of web 2 failed: web@2.service failed on a: exit-code",
      confirmRemoval: [],
    });
  });
  it("a deploy is announced once its prune is written; the removal is confirmed after", () => {
    const d = nextStep(plan(), at("done", { removalPending: ["web@1.service"] }));
    expect(d).toMatchObject({ ok: true, result: "success", confirmRemoval: ["web@1.service"] });
    expect(nextStep(plan(), at("done"))).toMatchObject({ ok: true, confirmRemoval: [] });
  });
  it("a removal waits for its units before done; a deploy's prune only writes", () => {
    const removal = planRollout(
      { kind: "remove", stack: "web", label: "web", deployment: live.deployment, units: [], group: null },
      { live, history: [], hosts: [], place: () => [] },
      OPTS,
    );
    expect(nextStep(removal, at("prune"))).toMatchObject({ kind: "prune", wait: true });
    expect(nextStep(plan(), at("prune"))).toMatchObject({ kind: "prune", wait: false });
  });
  it("a failure kept (--no-removal): failed", () =>
    expect(nextStep(plan({ noRemoval: true }), at("done", { failure: crash }))).toMatchObject({ result: "failed" }));
  it("a removal the agents had not finished is not ok", () => {
    const removal = planRollout(
      { kind: "remove", stack: "web", label: "web", deployment: live.deployment, units: [], group: null },
      { live, history: [], hosts: [], place: () => [] },
      OPTS,
    );
    expect(nextStep(removal, at("done", { removalComplete: false }))).toMatchObject({ ok: false, result: "removed" });
    expect(nextStep(removal, at("done"))).toMatchObject({ ok: true, message: "Removed 1 units of web" });
  });
});
