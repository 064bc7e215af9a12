import { describe, expect, it } from "vitest";
import { defaultRollbackTarget, laterFailure, nextGeneration } from "../../controller/rollout/history.js";
import type { HistoryRecord, StatusReport } from "../../shared/spec.js";

const rec = (
  generation: number,
  result: HistoryRecord["result"],
  finalGeneration: number,
  failedLater = false,
): HistoryRecord => ({
  schema: 1,
  stack: "s",
  generation,
  environment: "test",
  deployment: { type: "standalone", name: "s", version: String(generation), group: null },
  user: "u",
  startedAt: "",
  finishedAt: "",
  durationMs: 1,
  result,
  message: "",
  units: [
    {
      name: `s-a@${generation}.service`,
      stack: "s",
      component: "a",
      group: null,
      version: String(generation),
      role: "dependency",
      text: "[Service]\nExecStart=/bin/x\n",
      placements: [{ global: true, metadata: {} }],
    },
  ],
  finalGeneration,
  ...(failedLater ? { failedLater: { at: "", unit: "x", host: "h", reason: "r" } } : {}),
});
const report = (node: string, gen: number, name: string, activeState: string, subState = "running"): StatusReport => ({
  schema: 1,
  node,
  stack: "s",
  generation: gen,
  desiredGeneration: gen,
  converging: false,
  units: [{ name, activeState, subState }],
  archives: [],
  errors: [],
  updatedAt: "",
});

describe("laterFailure: the live success whose units failed after their window", () => {
  const history = [rec(1, "success", 2), rec(3, "success", 4)];
  const cases: [string, HistoryRecord[], number | null, StatusReport[], string | null][] = [
    ["all active: nothing", history, 4, [report("h1", 4, "s-a@3.service", "active")], null],
    [
      "a unit failed in the live generation",
      history,
      4,
      [report("h1", 4, "s-a@3.service", "failed")],
      "3 s-a@3.service h1",
    ],
    [
      "restarting counts",
      history,
      4,
      [report("h1", 4, "s-a@3.service", "activating", "auto-restart")],
      "3 s-a@3.service h1",
    ],
    ["a report of an older generation is no evidence", history, 4, [report("h1", 3, "s-a@3.service", "failed")], null],
    ["nothing live", history, null, [report("h1", 4, "s-a@3.service", "failed")], null],
    [
      "marked already",
      [rec(1, "success", 2), rec(3, "success", 4, true)],
      4,
      [report("h1", 4, "s-a@3.service", "failed")],
      null,
    ],
    [
      "the live spec is a restore, not a success",
      [...history, rec(5, "rolled-back", 6)],
      6,
      [report("h1", 6, "s-a@3.service", "failed")],
      null,
    ],
  ];
  for (const [title, h, live, reports, want] of cases)
    it(title, () => {
      const f = laterFailure(h, live === null ? null : { generation: live }, new Map(reports.map((r) => [r.node, r])));
      expect(f ? `${f.record.generation} ${f.unit} ${f.host}` : null).toBe(want);
    });
});

describe("defaultRollbackTarget: never a generation that failed its watch or failed later", () => {
  const cases: [string, HistoryRecord[], number | null][] = [
    ["the success before the latest", [rec(1, "success", 2), rec(3, "success", 4)], 1],
    [
      "failed watches (rolled back) are never targets",
      [rec(1, "success", 2), rec(3, "rolled-back", 4), rec(5, "success", 6)],
      1,
    ],
    [
      "a success that failed later is skipped",
      [rec(1, "success", 2), rec(3, "success", 4, true), rec(5, "success", 6)],
      1,
    ],
    ["the latest failed later: the one before it", [rec(1, "success", 2), rec(3, "success", 4, true)], 1],
    ["nothing earlier", [rec(1, "success", 2), rec(3, "failed", 4)], null],
  ];
  for (const [title, h, want] of cases)
    it(title, () => expect(defaultRollbackTarget(h)?.generation ?? null).toBe(want));
});

describe("nextGeneration", () => {
  it("above the live spec and every record", () =>
    expect(nextGeneration({ generation: 4 }, [rec(1, "success", 2), rec(5, "rolled-back", 6)])).toBe(7));
});
