/**
 * The rollout planner as a table, like reconcileHost's: what is asked and what is live → the plan;
 * the plan and how far it got → the next step. Each case runs a whole rollout against scripted
 * outcomes of the steps (a failure in a given batch's phase) and lists the steps taken.
 * rollout-steps.test.ts tests each phase's transitions on their own.
 */
import { describe, expect, it } from "vitest";
import { PLAN_OPTS } from "../helpers/rollout.js";
import {
  NoAgentsError,
  planRollout,
  type RolloutPlan,
  type RolloutRequest,
} from "../../controller/rollout/rollout-plan.js";
import { advance, nextStep, start, type Failure, type Outcome } from "../../controller/rollout/rollout-steps.js";
import {
  NO_PLACEMENTS,
  UnplaceableUnitError,
  previewTargets,
  type HostView,
  type UnitTarget,
} from "../../controller/scheduler/targets.js";
import { GenerationOverflowError, nextGeneration } from "../../controller/rollout/history.js";
import { HistoryRecordSchema, type HistoryRecord, type StackSpec, type UnitSpec } from "../../shared/spec.js";

const unit = (name: string, version: string, extra: Partial<UnitSpec> = {}): UnitSpec => ({
  name: `web@${version}.service`.replace("web@", `${name}@`),
  stack: "web",
  component: name === "web" ? null : name.replace(/^web-/, ""),
  group: null,
  version,
  role: name === "web" ? "service" : "dependency",
  text: `${name} ${version}`,
  // global (every matching host), so that batches have several hosts to split; singletons below
  placements: [{ global: true, metadata: { role: ["web"] } }],
  ...extra,
});
const targetsOf = (units: UnitSpec[], hosts: HostView[]): UnitTarget[] => previewTargets(units, hosts, NO_PLACEMENTS);
const single = (u: UnitSpec): UnitSpec => ({ ...u, placements: [{ global: false, metadata: { role: ["web"] } }] });
const host = (node: string, agent = "passing", role = "web"): HostView => ({ node, meta: { role }, agent });
const spec = (generation: number, units: UnitSpec[]): StackSpec => ({
  schema: 1,
  stack: "web",
  generation,
  environment: "t",
  createdAt: "",
  deployment: { type: "service", name: "web", version: "1", group: null },
  units,
});
const deploy = (units: UnitSpec[], o: Partial<RolloutRequest> = {}): RolloutRequest => ({
  kind: "deploy",
  stack: "web",
  label: "web 2",
  deployment: { type: "service", name: "web", version: "2", group: null },
  units,
  group: null,
  ...o,
});
const hist = (generation: number, finalGeneration: number): HistoryRecord => ({
  schema: 1,
  stack: "web",
  generation,
  environment: "t",
  deployment: { type: "service", name: "web", version: "1", group: null },
  user: "u",
  startedAt: "",
  finishedAt: "",
  durationMs: 0,
  result: "success",
  message: "",
  units: [],
  finalGeneration,
});
const OPTS = PLAN_OPTS;

/**
 * Runs the plan to the end; outcomes come from `fails` ("<batch> <phase>" → failure, e.g.
 * "0 await-active"); a batch's await-active line shows where it follows its units, "+consul" when
 * the service is confirmed next.
 */
function run(plan: RolloutPlan, fails: Record<string, Failure> = {}): string[] {
  const steps: string[] = [];
  let p = start(plan);
  for (let i = 0; i < 60; i++) {
    const s = nextStep(plan, p);
    let o: Outcome;
    switch (s.kind) {
      case "write-batch":
        steps.push(`write ${s.batch.units.map(shown).join(" ")}`);
        o = { kind: s.kind };
        break;
      case "await-placement":
        o = { kind: s.kind, scope: s.batch.scope, failure: fails[`${s.index} ${s.kind}`] ?? null };
        break;
      case "await-active":
        steps.push(
          `follow ${s.scope.map((t) => `${t.name}@${t.hosts.join(",")}`).join(" ")}${plan.confirm ? " +consul" : ""}`,
        );
        o = { kind: s.kind, failure: fails[`${s.index} ${s.kind}`] ?? null };
        break;
      case "confirm":
      case "watch":
        o = { kind: s.kind, failure: fails[`${s.index} ${s.kind}`] ?? null };
        break;
      case "prune":
        steps.push(`prune ${s.replaced.join(",")} → ${s.units === null ? "delete" : s.units.map(shown).join(" ")}`);
        o = { kind: s.kind, removalComplete: true };
        break;
      case "restore":
        steps.push(`restore → ${s.units === null ? "delete" : s.units.map((u) => u.name).join(" ")}`);
        o = { kind: s.kind };
        break;
      case "keep-failed":
        steps.push(`keep ${s.added.join(",")}`);
        o = { kind: s.kind };
        break;
      case "done":
        steps.push(`done ${s.result}: ${s.message}`);
        return steps;
    }
    p = advance(plan, p, o);
  }
  throw new Error("the rollout did not end");
}

/** a unit as a step line shows it: its name, [rollout hosts], >the units it replaces */
const shown = (u: UnitSpec): string =>
  `${u.name}${u.hosts ? `[${u.hosts.join(",")}]` : ""}${u.replaces ? `>${u.replaces.join(",")}` : ""}`;
/** the service upgrades by replacement (a fixed port, or Upgrade=replace) */
const replacing = (u: UnitSpec): UnitSpec => (u.role === "service" ? { ...u, upgrade: "replace" } : u);
const v1 = [unit("web-db", "1"), unit("web", "1")];
const v2 = [unit("web-db", "1"), unit("web", "2")];
const crash: Failure = { unit: "web@2.service", host: "a", reason: "exit-code\nTraceback" };

describe("planRollout + nextStep", () => {
  const cases: {
    title: string;
    plan: () => RolloutPlan;
    fails?: Record<string, Failure>;
    steps: string[];
  }[] = [
    {
      title: "first deploy: one write, follow with the Consul confirmation, done",
      plan: () =>
        planRollout(
          deploy(v1, { label: "web 1" }),
          { place: targetsOf, live: null, history: [], hosts: [host("a"), host("b")] },
          OPTS,
        ),
      steps: [
        "write web-db@1.service web@1.service",
        "follow web-db@1.service@a,b web@1.service@a,b +consul",
        "done success: Deployment of web 1 and its dependencies successful.",
      ],
    },
    {
      title: "upgrade: old units kept beside the new, then pruned after confirmation",
      plan: () =>
        planRollout(deploy(v2), { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a")] }, OPTS),
      steps: [
        "write web@1.service web-db@1.service web@2.service",
        "follow web-db@1.service@a web@2.service@a +consul",
        "prune web@1.service → web-db@1.service web@2.service",
        "done success: Deployment of web 2 and its dependencies successful.",
      ],
    },
    {
      title: "canary then batches of --max-parallel, each confirmed before the next",
      plan: () =>
        planRollout(
          deploy(v1),
          { place: targetsOf, live: null, history: [], hosts: [host("a"), host("b"), host("c")] },
          { ...OPTS, canary: 1, maxParallel: 1 },
        ),
      steps: [
        "write web-db@1.service[a] web@1.service[a]",
        "follow web-db@1.service@a web@1.service@a +consul",
        "write web-db@1.service[a,b] web@1.service[a,b]",
        "follow web-db@1.service@a,b web@1.service@a,b +consul",
        "write web-db@1.service web@1.service",
        "follow web-db@1.service@a,b,c web@1.service@a,b,c +consul",
        "done success: Deployment of web 2 and its dependencies successful.",
      ],
    },
    {
      title: "singletons: each batch narrows a new unit to its previewed machine among the hosts so far",
      plan: () =>
        planRollout(
          deploy(v1.map(single)),
          { place: targetsOf, live: null, history: [], hosts: [host("a"), host("b"), host("c")] },
          { ...OPTS, canary: 1, maxParallel: 1 },
        ),
      steps: [
        "write web-db@1.service[a] web@1.service[]",
        "follow web-db@1.service@a web@1.service@ +consul",
        "write web-db@1.service web@1.service",
        "follow web-db@1.service@a web@1.service@b +consul",
        "done success: Deployment of web 2 and its dependencies successful.",
      ],
    },
    {
      title: "a failing canary: the other hosts get nothing; the previous generation is restored",
      plan: () =>
        planRollout(
          deploy(v2),
          { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a"), host("b")] },
          { ...OPTS, canary: 1 },
        ),
      fails: { "0 await-active": crash },
      steps: [
        "write web@1.service web-db@1.service web@2.service[a]",
        "follow web-db@1.service@a web@2.service@a +consul",
        "restore → web-db@1.service web@1.service",
        "done rolled-back: Deployment of web 2 failed: web@2.service failed on a: exit-code",
      ],
    },
    {
      title: "stop then start (Upgrade=replace): one host at a time by default, the new unit names the old",
      plan: () =>
        planRollout(
          deploy(v2.map(replacing)),
          { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a"), host("b")] },
          OPTS,
        ),
      steps: [
        "write web@1.service web-db@1.service web@2.service[a]>web@1.service",
        "follow web-db@1.service@a web@2.service@a +consul",
        "write web@1.service web-db@1.service web@2.service>web@1.service",
        "follow web-db@1.service@a,b web@2.service@a,b +consul",
        "prune web@1.service → web-db@1.service web@2.service>web@1.service",
        "done success: Deployment of web 2 and its dependencies successful.",
      ],
    },
    {
      title: "stop then start with --max-parallel 2: the batches the flags say",
      plan: () =>
        planRollout(
          deploy(v2.map(replacing)),
          { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a"), host("b"), host("c")] },
          { ...OPTS, maxParallel: 2 },
        ),
      steps: [
        "write web@1.service web-db@1.service web@2.service[a,b]>web@1.service",
        "follow web-db@1.service@a,b web@2.service@a,b +consul",
        "write web@1.service web-db@1.service web@2.service>web@1.service",
        "follow web-db@1.service@a,b,c web@2.service@a,b,c +consul",
        "prune web@1.service → web-db@1.service web@2.service>web@1.service",
        "done success: Deployment of web 2 and its dependencies successful.",
      ],
    },
    {
      title: "stop then start failing on the second host: the old version restored on the hosts replaced",
      plan: () =>
        planRollout(
          deploy(v2.map(replacing)),
          { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a"), host("b")] },
          OPTS,
        ),
      fails: { "1 await-active": { ...crash, host: "b" } },
      steps: [
        "write web@1.service web-db@1.service web@2.service[a]>web@1.service",
        "follow web-db@1.service@a web@2.service@a +consul",
        "write web@1.service web-db@1.service web@2.service>web@1.service",
        "follow web-db@1.service@a,b web@2.service@a,b +consul",
        "restore → web-db@1.service web@1.service",
        "done rolled-back: Deployment of web 2 failed: web@2.service failed on b: exit-code",
      ],
    },
    {
      title: "stop then start back to v1 (rollback): the live v2 no longer replaces v1, v1 replaces v2",
      plan: () =>
        planRollout(
          deploy(v1.map(replacing), { label: "web 1" }),
          {
            place: targetsOf,
            // v2 as its own deploy left it: it replaced v1
            live: spec(6, [unit("web-db", "1"), { ...replacing(unit("web", "2")), replaces: ["web@1.service"] }]),
            history: [],
            hosts: [host("a"), host("b")],
          },
          OPTS,
        ),
      steps: [
        "write web@2.service web-db@1.service web@1.service[a]>web@2.service",
        "follow web-db@1.service@a web@1.service@a +consul",
        "write web@2.service web-db@1.service web@1.service>web@2.service",
        "follow web-db@1.service@a,b web@1.service@a,b +consul",
        "prune web@2.service → web-db@1.service web@1.service>web@2.service",
        "done success: Deployment of web 1 and its dependencies successful.",
      ],
    },
    {
      title: "stop then start on a first deploy: nothing to replace, one batch",
      plan: () =>
        planRollout(
          deploy(v1.map(replacing), { label: "web 1" }),
          { place: targetsOf, live: null, history: [], hosts: [host("a"), host("b")] },
          OPTS,
        ),
      steps: [
        "write web-db@1.service web@1.service",
        "follow web-db@1.service@a,b web@1.service@a,b +consul",
        "done success: Deployment of web 1 and its dependencies successful.",
      ],
    },
    {
      title: "a unit failing after it was active (during confirmation): restored, the first log line in the message",
      plan: () =>
        planRollout(deploy(v2), { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a")] }, OPTS),
      fails: { "0 confirm": { unit: "web@2.service", host: "a", reason: "failed (exit-code) after it was active" } },
      steps: [
        "write web@1.service web-db@1.service web@2.service",
        "follow web-db@1.service@a web@2.service@a +consul",
        "restore → web-db@1.service web@1.service",
        "done rolled-back: Deployment of web 2 failed: web@2.service failed on a: failed (exit-code) after it was active",
      ],
    },
    {
      title: "a failure with log lines: the message ends with the last of them, not with a colon",
      plan: () =>
        planRollout(deploy(v2), { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a")] }, OPTS),
      fails: {
        "0 await-active": {
          unit: "web@2.service",
          host: "a",
          reason: "web@2.service failed (Result=exit-code); last log lines:\n      starting\n      boom: port taken",
        },
      },
      steps: [
        "write web@1.service web-db@1.service web@2.service",
        "follow web-db@1.service@a web@2.service@a +consul",
        "restore → web-db@1.service web@1.service",
        "done rolled-back: Deployment of web 2 failed: web@2.service failed on a: web@2.service failed (Result=exit-code); last log line: boom: port taken",
      ],
    },
    {
      title: "--no-removal: the failed units stay, recorded as failed",
      plan: () =>
        planRollout(
          deploy(v2),
          { place: targetsOf, live: spec(4, v1), history: [], hosts: [host("a")] },
          { ...OPTS, noRemoval: true },
        ),
      fails: { "0 await-active": crash },
      steps: [
        "write web@1.service web-db@1.service web@2.service",
        "follow web-db@1.service@a web@2.service@a +consul",
        "keep web@2.service",
        "done failed: Deployment of web 2 failed: web@2.service failed on a: exit-code",
      ],
    },
    {
      title: "a failed first deploy deletes the spec (nothing was there before)",
      plan: () =>
        planRollout(
          deploy(v1),
          { place: targetsOf, live: null, history: [], hosts: [host("a")] },
          { ...OPTS, skipConsul: true },
        ),
      fails: {
        "0 await-active": {
          unit: "web@1.service",
          host: "a",
          reason: "timed out after 75s: web@1.service not active yet on a",
        },
      },
      steps: [
        "write web-db@1.service web@1.service",
        "follow web-db@1.service@a web@1.service@a",
        "restore → delete",
        "done rolled-back: Deployment of web 2 failed: web@1.service failed on a: timed out after 75s: web@1.service not active yet on a",
      ],
    },
    {
      title: "rollback is a deploy of the recorded units: the newer version is pruned",
      plan: () =>
        planRollout(
          deploy(v1, { label: "web 1 (rollback to generation 3)" }),
          { place: targetsOf, live: spec(6, v2), history: [hist(3, 4), hist(5, 6)], hosts: [host("a")] },
          OPTS,
        ),
      steps: [
        "write web@2.service web-db@1.service web@1.service",
        "follow web-db@1.service@a web@1.service@a +consul",
        "prune web@2.service → web-db@1.service web@1.service",
        "done success: Deployment of web 1 (rollback to generation 3) and its dependencies successful.",
      ],
    },
    {
      title: "remove: everything goes, the spec is deleted",
      plan: () =>
        planRollout(
          { ...deploy([]), kind: "remove", label: "web" },
          { place: targetsOf, live: spec(4, v1), history: [], hosts: [] },
          OPTS,
        ),
      steps: ["prune web-db@1.service,web@1.service → delete", "done removed: Removed 2 units of web"],
    },
    {
      title: "remove of one group leaves the other",
      plan: () =>
        planRollout(
          { ...deploy([]), kind: "remove", label: "web group blue", group: "blue" },
          {
            place: targetsOf,
            live: spec(4, [
              unit("web", "1", { group: "blue", name: "web:blue@1.service" }),
              unit("web", "1", { group: "green", name: "web:green@1.service" }),
            ]),
            history: [],
            hosts: [],
          },
          OPTS,
        ),
      steps: ["prune web:blue@1.service → web:green@1.service", "done removed: Removed 1 units of web group blue"],
    },
  ];
  for (const c of cases) it(c.title, () => expect(run(c.plan(), c.fails)).toEqual(c.steps));

  it("generations go forward past the live spec and the history", () => {
    expect(
      planRollout(deploy(v2), { place: targetsOf, live: spec(4, v1), history: [hist(5, 7)], hosts: [host("a")] }, OPTS)
        .firstGeneration,
    ).toBe(8);
  });
  it("warns about target hosts whose agent is not passing (and only those)", () => {
    const p = planRollout(
      deploy(v1),
      {
        place: targetsOf,
        live: null,
        history: [],
        hosts: [host("a"), host("b", "critical"), host("w", "critical", "worker")],
      },
      OPTS,
    );
    expect(p.warnings).toEqual([
      "houston-agent on b is critical: its units cannot be confirmed until it reports again",
    ]);
  });
  it("refuses what cannot be placed, or a fleet with no agents", () => {
    expect(() => planRollout(deploy(v1), { place: targetsOf, live: null, history: [], hosts: [] }, OPTS)).toThrow(
      NoAgentsError,
    );
    expect(() =>
      planRollout(
        deploy(v1),
        { place: targetsOf, live: null, history: [], hosts: [host("w", "passing", "worker")] },
        OPTS,
      ),
    ).toThrow(UnplaceableUnitError);
    expect(() =>
      planRollout(
        deploy(v1),
        { place: targetsOf, live: null, history: [], hosts: [host("w", "passing", "worker")] },
        OPTS,
      ),
    ).toThrow(/web-db@1.service targets no host: it wants role=web; hosts: w \(role=worker\)/);
  });
});

describe("nextGeneration: safe integers, strictly increasing", () => {
  const rec = (generation: number, finalGeneration: number | null = generation) => ({ generation, finalGeneration });
  it.each([
    { live: null, history: [], next: 1 },
    { live: 4, history: [rec(2), rec(3)], next: 5 },
    { live: 2, history: [rec(3, null)], next: 4 },
    { live: null, history: [rec(5, 7)], next: 8 },
  ])("live $live, history $history → $next", ({ live, history, next }) => {
    expect(nextGeneration(live === null ? null : { generation: live }, history)).toBe(next);
  });
  it.each([1e300, Number.MAX_SAFE_INTEGER])("refuses rather than freezing at %d (the next would equal it)", (g) => {
    expect(() => nextGeneration({ generation: 1 }, [rec(g)])).toThrow(GenerationOverflowError);
    expect(() => nextGeneration({ generation: g }, [])).toThrow(/the next generation after .* is not a safe integer/);
  });
  it("the schemas take only safe integers", () => {
    expect(HistoryRecordSchema.shape.generation.safeParse(1e300).success).toBe(false);
    expect(HistoryRecordSchema.shape.finalGeneration.safeParse(2 ** 53).success).toBe(false);
    expect(HistoryRecordSchema.shape.generation.safeParse(Number.MAX_SAFE_INTEGER).success).toBe(true);
  });
});

describe("a batch of global units only", () => {
  const globals = [unit("web-cache", "1"), unit("web", "2")];
  const seen = { place: targetsOf, live: null, history: [], hosts: [host("a"), host("b")] };
  it("awaits no placement where each agent places them itself", () => {
    expect(planRollout(deploy(globals), seen, OPTS).batches[0]!.placing).toEqual([]);
  });
  it("awaits its placement under fleet, which runs them: an unreachable fleetd is said, not waited out", () => {
    const placing = planRollout(deploy(globals), { ...seen, placesGlobal: true }, OPTS).batches[0]!.placing;
    expect(placing.map((u) => u.name)).toEqual(["web-cache@1.service", "web@2.service"]);
  });
});
