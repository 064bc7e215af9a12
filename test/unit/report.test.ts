import { describe, expect, it } from "vitest";
import { buildReports, type ReportInput } from "../../agent/report.js";
import { NO_FACTS } from "../../agent/stack-phase.js";
import type { OwnedUnit } from "../../agent/state.js";
import { hashText, type DesiredUnit, type HostDesired, type Runner } from "../../agent/targeting.js";

const unit = (name: string, stack = "s", runner: Runner = "agent"): DesiredUnit => ({
  name,
  runner,
  stack,
  role: "dependency",
  version: "1",
  group: null,
  text: name,
  hash: hashText(name),
});
const owned = (name: string, stack = "s"): OwnedUnit => ({
  name,
  stack,
  hash: hashText(name),
  startedHash: hashText(name),
  serviceId: null,
});
const desired = (units: DesiredUnit[], generations: [string, number][] = [["s", 3]]): HostDesired => ({
  units,
  archives: new Map(),
  generations: new Map(generations),
  refused: new Map(),
});
const input = (o: Partial<ReportInput>): ReportInput => ({
  node: "h1",
  desired: desired([]),
  owned: [],
  states: new Map(),
  applied: new Map(),
  facts: NO_FACTS,
  archives: new Map(),
  ...o,
});
const active = { activeState: "active", subState: "running" };

describe("buildReports", () => {
  it("a settled stack: its units with their state, applied and desired generation, not converging", () => {
    const [r, ...rest] = buildReports(
      input({
        desired: desired([unit("a@1.service")]),
        owned: [owned("a@1.service")],
        states: new Map([["a@1.service", active]]),
        applied: new Map([["s", 3]]),
        archives: new Map([
          ["b".repeat(64), "s"],
          ["a".repeat(64), "s"],
          ["c".repeat(64), "other"],
        ]),
      }),
    );
    expect(rest).toEqual([]);
    expect(r).toEqual({
      schema: 1,
      node: "h1",
      stack: "s",
      generation: 3,
      desiredGeneration: 3,
      converging: false,
      units: [{ name: "a@1.service", ...active }],
      archives: ["a".repeat(64), "b".repeat(64)],
      errors: [],
    });
  });

  it("gives a unit the port the agent chose for it (ServicePort=auto or a range), and no other unit one", () => {
    const [r] = buildReports(
      input({
        desired: desired([unit("g@1.service"), unit("g@2.service"), unit("cache@1.service")]),
        states: new Map([
          ["g@1.service", active],
          ["g@2.service", active],
          ["cache@1.service", active],
        ]),
        ports: new Map([
          ["g@1.service", 20417],
          ["g@2.service", 23001],
        ]),
      }),
    );
    expect(r?.units).toEqual([
      { name: "g@1.service", ...active, port: 20417 },
      { name: "g@2.service", ...active, port: 23001 },
      { name: "cache@1.service", ...active },
    ]);
  });

  it("names the version the desired generation deploys (what the Consul UI shows beside the generation)", () => {
    const deployment = { type: "service" as const, name: "s", version: "7b7d061b", group: null };
    const [r] = buildReports(
      input({ desired: { ...desired([unit("s@7b7d061b.service")]), deployments: new Map([["s", deployment]]) } }),
    );
    expect(r).toMatchObject({ desiredGeneration: 3, version: "7b7d061b", deployment });
    const [g] = buildReports(
      input({
        desired: {
          ...desired([unit("beat@1.service")]),
          deployments: new Map([["s", { type: "global" as const, name: "global", version: null, group: null }]]),
        },
      }),
    );
    expect(g).toMatchObject({ version: null, deployment: { type: "global" } });
  });

  it("a unit with no state read is reported unknown", () => {
    const [r] = buildReports(input({ desired: desired([unit("a@1.service")]) }));
    expect(r?.units).toEqual([{ name: "a@1.service", activeState: "unknown", subState: "unknown" }]);
    expect(r?.generation).toBeNull();
  });

  it("phase: converging while steps are pending, failed with the pass's errors, refused with the spec's", () => {
    const d = desired(
      [unit("a@1.service", "a"), unit("b@1.service", "b"), unit("c@1.service", "c")],
      [
        ["a", 1],
        ["b", 1],
        ["c", 1],
      ],
    );
    const reports = buildReports(
      input({
        desired: d,
        facts: {
          pending: new Set(["a"]),
          failed: new Map([["b", ["start-unit b@1.service: boom"]]]),
          refused: new Map([
            ["c", ["not applying stacks/c: unsigned"]],
            ["b", ["not applying stacks/b: unsigned"]],
          ]),
        },
      }),
    );
    expect(reports.map((r) => [r.stack, r.converging, r.errors])).toEqual([
      ["a", true, []],
      ["b", true, ["start-unit b@1.service: boom"]],
      ["c", false, ["not applying stacks/c: unsigned"]],
    ]);
  });

  it("a stack whose spec was refused and that never ran here is still reported, with its error", () => {
    const reports = buildReports(
      input({ desired: desired([], []), facts: { ...NO_FACTS, refused: new Map([["x", ["bad spec"]]]) } }),
    );
    expect(reports).toMatchObject([{ stack: "x", desiredGeneration: null, units: [], errors: ["bad spec"] }]);
    expect(reports[0]?.refused).toBeUndefined();
  });

  it("a refused spec's generation and problem are reported as `refused` (what the controller follows)", () => {
    const reports = buildReports(
      input({
        desired: desired([], []),
        facts: {
          ...NO_FACTS,
          refused: new Map([["x", ["not applying stacks/x generation 9: unsigned"]]]),
          refusals: new Map([["x", { generation: 9, problem: "unsigned" }]]),
        },
      }),
    );
    expect(reports).toMatchObject([
      {
        stack: "x",
        errors: ["not applying stacks/x generation 9: unsigned"],
        refused: { generation: 9, reason: "unsigned" },
      },
    ]);
  });

  it("a removed stack is reported while its owned units remain, then not at all", () => {
    const removing = buildReports(input({ desired: desired([], []), owned: [owned("old@1.service", "gone")] }));
    expect(removing).toMatchObject([{ stack: "gone", desiredGeneration: null, units: [{ name: "old@1.service" }] }]);
    expect(buildReports(input({ desired: desired([], []) }))).toEqual([]);
  });

  it("a stack placed elsewhere (desired, nothing here) still gets a report: its generation is known", () => {
    expect(buildReports(input({ desired: desired([]) }))).toMatchObject([{ stack: "s", units: [] }]);
  });

  it("fleet's units placed here and those it still stops are reported with the stack's own, once each", () => {
    const [r] = buildReports(
      input({
        desired: desired([unit("f@2.service", "s", "fleet")]),
        lingering: [
          { name: "f@1.service", stack: "s" },
          { name: "f@2.service", stack: "s" },
        ],
      }),
    );
    expect(r?.units.map((u) => u.name)).toEqual(["f@2.service", "f@1.service"]);
  });

  it("stacks sorted, each stack only its own units", () => {
    const reports = buildReports(
      input({
        desired: desired(
          [unit("a@1.service", "alpha"), unit("z@1.service", "zeta")],
          [
            ["zeta", 1],
            ["alpha", 1],
          ],
        ),
        owned: [owned("z@0.service", "zeta")],
      }),
    );
    expect(reports.map((r) => [r.stack, r.units.map((u) => u.name)])).toEqual([
      ["alpha", ["a@1.service"]],
      ["zeta", ["z@1.service", "z@0.service"]],
    ]);
  });
});
