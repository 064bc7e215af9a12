/**
 * A unit's window on the host's own clock: the rollout writes each unit's window into the spec;
 * the agent says in its report whether the unit has been active that long (and reports again when
 * the window ends); the controller waits for that word from every host (notStood).
 */
import { describe, expect, it } from "vitest";
import { PLAN_OPTS } from "../helpers/rollout.js";
import { notStood } from "../../controller/rollout/progress.js";
import { planRollout, type PlanOptions, type RolloutRequest } from "../../controller/rollout/rollout-plan.js";
import { NO_PLACEMENTS, previewTargets, type HostView } from "../../controller/scheduler/targets.js";
import { UnitStates, windowLeftMs } from "../../agent/unit-states.js";
import type { UnitState } from "../../agent/systemd.js";
import type { DesiredUnit, HostDesired } from "../../agent/targeting.js";
import type { StatusReport, UnitSpec, UnitStatus } from "../../shared/spec.js";

const unit = (name: string, text: string, extra: Partial<UnitSpec> = {}): UnitSpec => ({
  name,
  stack: "web",
  component: null,
  group: null,
  version: "2",
  role: "dependency",
  text,
  placements: [{ global: true, metadata: {} }],
  ...extra,
});
const SIMPLE = "[Service]\nExecStart=/bin/sleep infinity\n";
const NOTIFY = "[Service]\nType=notify\nExecStart=/usr/bin/server\n";

describe("planRollout writes each unit's window into the units it deploys", () => {
  const req = (units: UnitSpec[]): RolloutRequest => ({
    kind: "deploy",
    stack: "web",
    label: "web",
    deployment: { type: "standalone", name: "web", version: null, group: null },
    units,
    group: null,
  });
  const hosts: HostView[] = [{ node: "a", meta: {}, agent: "passing" }];
  const seen = {
    place: (u: UnitSpec[], h: HostView[]) => previewTargets(u, h, NO_PLACEMENTS),
    live: null,
    history: [],
    hosts,
  };
  // the CLI's defaults: no --min-healthy (the planner tests' PLAN_OPTS say 0)
  const DEFAULTS: PlanOptions = { ...PLAN_OPTS, minHealthySeconds: null };
  const written = (units: UnitSpec[], o = DEFAULTS) =>
    Object.fromEntries((planRollout(req(units), seen, o).batches[0]?.units ?? []).map((u) => [u.name, u.window]));

  it("Type=simple gets --delay; a ready-aware unit none (an old window carried from history is dropped)", () => {
    expect(written([unit("s@2.service", SIMPLE), unit("n@2.service", NOTIFY, { window: 7 })])).toEqual({
      "s@2.service": 5,
      "n@2.service": undefined,
    });
  });
  it("--min-healthy sets every unit's window, 0 none", () => {
    expect(written([unit("n@2.service", NOTIFY)], { ...DEFAULTS, minHealthySeconds: 12 })).toEqual({
      "n@2.service": 12,
    });
    expect(written([unit("s@2.service", SIMPLE)], { ...DEFAULTS, minHealthySeconds: 0 })).toEqual({
      "s@2.service": undefined,
    });
  });
});

describe("notStood: the hosts that have not said a unit stood its window", () => {
  const rep = (node: string, gen: number, units: Partial<UnitStatus>[]): StatusReport => ({
    schema: 1,
    node,
    stack: "web",
    generation: gen,
    desiredGeneration: gen,
    converging: false,
    archives: [],
    errors: [],
    updatedAt: "",
    units: units.map((u) => ({ name: "a@2.service", activeState: "active", subState: "running", ...u })),
  });
  const scope = [{ name: "a@2.service", hosts: ["h1", "h2"] }];
  const cases: { title: string; reports: StatusReport[]; want: string[] }[] = [
    { title: "both stood", reports: [rep("h1", 5, [{ stood: true }]), rep("h2", 5, [{ stood: true }])], want: [] },
    {
      title: "one host's report is from before the window ended",
      reports: [rep("h1", 5, [{ stood: true }]), rep("h2", 5, [{ stood: false }])],
      want: ["a@2.service h2"],
    },
    {
      title: "an older agent says nothing of it: the controller's count stands",
      reports: [rep("h1", 5, [{}]), rep("h2", 5, [{ stood: false }])],
      want: ["a@2.service h2"],
    },
    {
      title: "a report of an older generation is no evidence either way",
      reports: [rep("h1", 4, [{ stood: false }]), rep("h2", 5, [{ stood: true }])],
      want: [],
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const got = notStood(scope, 5, new Map(c.reports.map((r) => [r.node, r])));
      expect(got.map((x) => `${x.unit} ${x.hosts.join(",")}`)).toEqual(c.want);
    });
});

describe("windowLeftMs: how much of a window is left on the host's monotonic clock", () => {
  it.each([
    { title: "just active", window: 5, enter: 1_000_000, now: 1_000_000, want: 5000 },
    { title: "4.2 s in", window: 5, enter: 1_000_000, now: 5_200_000, want: 800 },
    { title: "exactly stood", window: 5, enter: 1_000_000, now: 6_000_000, want: 0 },
    { title: "long since", window: 5, enter: 1_000_000, now: 90_000_000, want: 0 },
    {
      title: "activated after the clock was read (never overstated)",
      window: 5,
      enter: 2_000_000,
      now: 1_999_000,
      want: 5001,
    },
    { title: "not active", window: 5, enter: undefined, now: 9_000_000, want: null },
  ])("$title", ({ window, enter, now, want }) => expect(windowLeftMs(window, enter, now)).toBe(want));
});

describe("UnitStates: stood, and when to report again", () => {
  const desired = (units: Partial<DesiredUnit>[]): HostDesired => ({
    units: units.map((u) => ({
      name: "x",
      runner: "agent",
      stack: "web",
      role: "dependency",
      version: "2",
      group: null,
      text: "",
      hash: "",
      ...u,
    })),
    archives: new Map(),
    generations: new Map([["web", 5]]),
    refused: new Map(),
  });
  const systemd = (states: Record<string, UnitState>) => ({
    unitStates: async (names: string[], opts: { activeSince?: ReadonlySet<string> } = {}) =>
      new Map(
        names.map((n) => {
          const { activeEnterUs, ...rest } = states[n] ?? {
            loadState: "not-found",
            activeState: "inactive",
            subState: "dead",
          };
          // the enter time only for the units asked about, as systemd.ts does
          return [n, opts.activeSince?.has(n) ? { ...rest, activeEnterUs } : rest];
        }),
      ),
  });
  const running = (enterUs: number): UnitState => ({
    loadState: "loaded",
    activeState: "active",
    subState: "running",
    activeEnterUs: enterUs,
  });

  it("a young unit has not stood; the next report is due when its window ends; units without a window say nothing", async () => {
    const us = new UnitStates(
      systemd({
        "young@2.service": running(8_000_000),
        "old@2.service": running(1_000_000),
        "plain@2.service": running(1),
      }),
      null,
      () => 10_000_000,
    );
    const { states, recheckInMs } = await us.read(
      [],
      desired([
        { name: "young@2.service", window: 5 },
        { name: "old@2.service", window: 5 },
        { name: "plain@2.service" },
      ]),
    );
    expect(states.get("young@2.service")?.stood).toBe(false);
    expect(states.get("old@2.service")?.stood).toBe(true);
    expect(states.get("plain@2.service")).not.toHaveProperty("stood");
    expect(recheckInMs).toBe(3000);
  });

  it("a unit that is not active has not stood, and waits for its next change (no recheck)", async () => {
    const us = new UnitStates(
      systemd({
        "f@2.service": { loadState: "loaded", activeState: "failed", subState: "failed", result: "exit-code" },
      }),
      null,
      () => 10_000_000,
    );
    const { states, recheckInMs } = await us.read([], desired([{ name: "f@2.service", window: 5 }]));
    expect(states.get("f@2.service")?.stood).toBe(false);
    expect(recheckInMs).toBeNull();
  });
});
