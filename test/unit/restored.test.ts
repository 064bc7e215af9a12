/**
 * After a restore the rollout says the previous versions serve only when the hosts report them
 * active; a host whose agent is not passing is named, not waited for; a failed unit is said.
 */
import { describe, expect, it } from "vitest";
import { quiet } from "../helpers/output.js";
import { awaitRestored } from "../../controller/rollout/restored.js";
import { TimeoutError } from "../../controller/scheduler/agent-reports.js";
import type { Scheduler } from "../../controller/scheduler/scheduler.js";
import type { HostView } from "../../controller/scheduler/targets.js";
import type { StatusReport, UnitSpec } from "../../shared/spec.js";

const unit: UnitSpec = {
  name: "web@1.service",
  stack: "web",
  component: null,
  group: null,
  version: "1",
  role: "service",
  text: "x",
  placements: [{ global: true, metadata: {} }],
};
const report = (node: string, activeState: string): StatusReport => ({
  schema: 1,
  node,
  stack: "web",
  generation: 9,
  desiredGeneration: 9,
  converging: false,
  units: [{ name: unit.name, activeState, subState: "x" }],
  archives: [],
  errors: [],
  updatedAt: "",
});
/** a scheduler whose hosts report these states, one set after another (and whose agents are `later` by the end) */
const scheduler = (rounds: StatusReport[][], later: HostView[] = []): Scheduler =>
  ({
    hosts: async () => later,
    reports: async () => new Map([["web", new Map((rounds[0] ?? []).map((r) => [r.node, r]))]]),
    placed: async (_s: string, _g: number, units: UnitSpec[], hosts: HostView[]) => ({
      targets: units.map((u) => ({ name: u.name, hosts: hosts.map((h) => h.node) })),
      unplaced: [],
    }),
    follow: async <T>(_s: string, _d: number, check: (r: ReadonlyMap<string, StatusReport>) => T | undefined) => {
      for (const round of rounds) {
        const v = check(new Map(round.map((r) => [r.node, r])));
        if (v !== undefined) return v;
      }
      throw new TimeoutError("no report");
    },
  }) as unknown as Scheduler;
const hosts = (...agents: [string, string][]): HostView[] => agents.map(([node, agent]) => ({ node, meta: {}, agent }));

describe("awaitRestored", () => {
  it("active again on every host: nothing to say", async () => {
    const s = scheduler([
      [report("a", "activating"), report("b", "active")],
      [report("a", "active"), report("b", "active")],
    ]);
    expect(await awaitRestored(s, "web", 9, [unit], hosts(["a", "passing"], ["b", "passing"]), 0, quiet)).toEqual([]);
  });
  it("a host where it never came back is named when the bound passes", async () => {
    const s = scheduler([[report("a", "inactive"), report("b", "active")]]);
    expect(await awaitRestored(s, "web", 9, [unit], hosts(["a", "passing"], ["b", "passing"]), 0, quiet)).toEqual([
      "web@1.service is not active yet on a",
    ]);
  });
  it("a failed restored unit is said at once", async () => {
    const s = scheduler([[report("a", "failed"), report("b", "active")]]);
    const got = await awaitRestored(s, "web", 9, [unit], hosts(["a", "passing"], ["b", "passing"]), 0, quiet);
    expect(got[0]).toMatch(/^web@1\.service failed on a/);
  });
  it("an agent that stops passing during the wait is named beside what its host did not report", async () => {
    const s = scheduler([[report("a", "inactive"), report("b", "active")]], hosts(["a", "critical"], ["b", "passing"]));
    expect(await awaitRestored(s, "web", 9, [unit], hosts(["a", "passing"], ["b", "passing"]), 0, quiet)).toEqual([
      "web@1.service is not active yet on a",
      "a: the host's agent stopped passing meanwhile, so its report is no evidence",
    ]);
  });
  it("an agent that refuses the restored spec is said at once", async () => {
    const refusing: StatusReport = {
      ...report("a", "active"),
      generation: 8,
      desiredGeneration: 8,
      refused: { generation: 9, reason: "the spec is not signed and this agent trusts only signed specs" },
    };
    // it refuses after the restore was written (the first look finds it still starting)
    const s = scheduler([
      [report("a", "activating"), report("b", "active")],
      [refusing, report("b", "active")],
    ]);
    const got = await awaitRestored(s, "web", 9, [unit], hosts(["a", "passing"], ["b", "passing"]), 0, quiet);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/a refused generation 9: the spec is not signed and this agent trusts only signed specs$/);
  });
  it("hosts that refused this rollout's specs ran nothing new: nothing to wait for", async () => {
    const refusedEarlier = (node: string): StatusReport => ({
      ...report(node, "active"),
      generation: 6,
      desiredGeneration: 6,
      refused: { generation: 7, reason: "the spec is not signed" },
    });
    const s = scheduler([[refusedEarlier("a"), refusedEarlier("b")]]);
    const hs = hosts(["a", "passing"], ["b", "passing"]);
    expect(await awaitRestored(s, "web", 9, [unit], hs, 0, quiet, 7)).toEqual([
      "a refused this rollout's specs (the spec is not signed): it runs what it ran before",
      "b refused this rollout's specs (the spec is not signed): it runs what it ran before",
    ]);
  });
  it("a host whose agent is not passing is not vouched for (and not waited for)", async () => {
    const s = scheduler([[report("b", "active")]]);
    expect(await awaitRestored(s, "web", 9, [unit], hosts(["a", "critical"], ["b", "passing"]), 0, quiet)).toEqual([
      "web@1.service on a: the host's agent is not passing, so not vouched for",
    ]);
  });
});
