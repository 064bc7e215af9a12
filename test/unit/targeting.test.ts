/**
 * A placement is checked by the host it names (issue 24 §3): every rule the host can decide by
 * itself (the rollout's allowlist, metadata, MachineID=, Conflicts= both ways against what runs or
 * is placed here) before it runs a placed unit; a refusal of the spec's generation names the
 * unit, the host and the rule in the stack's report.
 */
import { describe, expect, it } from "vitest";
import { buildReports } from "../../agent/report.js";
import { NO_FACTS } from "../../agent/stack-phase.js";
import { desiredForHost, placementProblem } from "../../agent/targeting.js";
import { decide } from "../../controller/rollout/progress.js";
import type { Placement } from "../../shared/placement.js";
import type { Machine, PlacementDoc } from "../../shared/schedule.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

const unit = (name: string, p: Partial<Placement> = {}, extra: Partial<UnitSpec> = {}): UnitSpec => ({
  name,
  stack: "s",
  component: name.split("@")[0] ?? null,
  group: null,
  version: "1",
  role: "dependency",
  text: `[Service]\nExecStart=/bin/true\n`,
  placements: [{ global: false, metadata: {}, ...p }],
  ...extra,
});
const h1: Machine = { node: "h1", meta: { role: "web" }, machineId: "m-1", state: "up" };

describe("placementProblem", () => {
  const cases: { title: string; u: UnitSpec; here?: UnitSpec[]; problem: RegExp | null }[] = [
    { title: "nothing asked", u: unit("a@1.service"), problem: null },
    { title: "metadata matches", u: unit("a@1.service", { metadata: { role: ["web", "db"] } }), problem: null },
    {
      title: "metadata does not match",
      u: unit("a@1.service", { metadata: { role: ["db"] } }),
      problem: /^metadata role=db does not match this host's \(role=web\)$/,
    },
    { title: "MachineID= this machine's id", u: unit("a@1.service", { machineId: "m-1" }), problem: null },
    { title: "MachineID= this node's name", u: unit("a@1.service", { machineId: "h1" }), problem: null },
    {
      title: "MachineID= another machine",
      u: unit("a@1.service", { machineId: "m-2" }),
      problem: /^MachineID=m-2 is not this machine \(m-1\)$/,
    },
    { title: "in the rollout's allowlist", u: unit("a@1.service", {}, { hosts: ["h1", "h2"] }), problem: null },
    {
      title: "outside the rollout's allowlist",
      u: unit("a@1.service", {}, { hosts: ["h2"] }),
      problem: /^the rollout's host allowlist \(h2\) does not include h1$/,
    },
    {
      title: "its Conflicts= matches a unit here",
      u: unit("a@1.service", { conflicts: ["b@*"] }),
      here: [unit("b@1.service")],
      problem: /^Conflicts=b@\*: b@1.service runs or is placed here$/,
    },
    {
      title: "a unit here has Conflicts= matching it",
      u: unit("a@1.service"),
      here: [unit("b@1.service", { conflicts: ["a@*"] })],
      problem: /^b@1.service, which runs or is placed here, has Conflicts=a@\*$/,
    },
    {
      title: "Conflicts= with itself (another instance elsewhere) is no conflict",
      u: unit("a@1.service", { conflicts: ["a@*"] }),
      here: [unit("a@1.service", { conflicts: ["a@*"] })],
      problem: null,
    },
    {
      title: "Conflicts= matching nothing here",
      u: unit("a@1.service", { conflicts: ["db@*"] }),
      here: [unit("b@1.service")],
      problem: null,
    },
  ];
  it.each(cases)("$title", ({ u, here, problem }) => {
    const got = placementProblem(u, h1, here ?? []);
    if (problem === null) expect(got).toBeNull();
    else expect(got).toMatch(problem);
  });
});

describe("desiredForHost refuses placements that break a rule, and reports them", () => {
  const spec = (stack: string, units: UnitSpec[], generation = 4): StackSpec => ({
    schema: 1,
    stack,
    generation,
    environment: "e",
    createdAt: "",
    deployment: { type: "standalone", name: stack, version: null, group: null },
    units: units.map((u) => ({ ...u, stack })),
  });
  const doc = (s: StackSpec, units: Record<string, string[]>, generation = s.generation): PlacementDoc => ({
    schema: 1,
    stack: s.stack,
    generation,
    units,
    unplaced: {},
    moves: [],
    scheduler: "h9",
    updatedAt: "",
  });

  it("two conflicting units placed on one host: neither runs, both refusals name unit, host and rule", () => {
    const db = spec("db", [unit("db@1.service", { conflicts: ["cache@*"] })]);
    const cache = spec("cache", [unit("cache@1.service")]);
    const d = desiredForHost(
      [db, cache],
      new Map([
        ["db", doc(db, { "db@1.service": ["h1"] })],
        ["cache", doc(cache, { "cache@1.service": ["h1"] })],
      ]),
      "h1",
      { role: "web" },
    );
    expect(d.units).toEqual([]);
    expect(d.refused.get("db")).toEqual([
      "placement of db@1.service on h1 refused: Conflicts=cache@*: cache@1.service runs or is placed here",
    ]);
    expect(d.refused.get("cache")).toEqual([
      "placement of cache@1.service on h1 refused: db@1.service, which runs or is placed here, has Conflicts=cache@*",
    ]);
  });

  it("a placed unit conflicting with a global unit here: the global runs, the placed one is refused", () => {
    const s = spec("s", [unit("agent@1.service", { global: true }), unit("web@1.service", { conflicts: ["agent@*"] })]);
    const d = desiredForHost([s], new Map([["s", doc(s, { "web@1.service": ["h1"] })]]), "h1", {});
    expect(d.units.map((u) => u.name)).toEqual(["agent@1.service"]);
    expect(d.refused.get("s")?.[0]).toMatch(/^placement of web@1.service on h1 refused: Conflicts=agent@\*/);
  });

  it("a placement of an older generation that the spec no longer admits is not run and not reported (it lags)", () => {
    const s = spec("s", [unit("web@1.service", {}, { hosts: ["h2"] })], 5);
    const d = desiredForHost([s], new Map([["s", doc(s, { "web@1.service": ["h1"] }, 4)]]), "h1", {});
    expect(d.units).toEqual([]);
    expect(d.refused.size).toBe(0);
  });

  it("the same placement for the spec's generation is reported", () => {
    const s = spec("s", [unit("web@1.service", { metadata: { role: ["db"] } })]);
    const d = desiredForHost([s], new Map([["s", doc(s, { "web@1.service": ["h1"] })]]), "h1", { role: "web" });
    expect(d.units).toEqual([]);
    expect(d.refused.get("s")).toEqual([
      "placement of web@1.service on h1 refused: metadata role=db does not match this host's (role=web)",
    ]);
  });

  it("a well-formed placement runs as before, with nothing refused", () => {
    const s = spec("s", [unit("web@1.service", { conflicts: ["db@*"] }), unit("api@1.service")]);
    const d = desiredForHost(
      [s],
      new Map([["s", doc(s, { "web@1.service": ["h1"], "api@1.service": ["h1"] })]]),
      "h1",
      {},
    );
    expect(d.units.map((u) => u.name)).toEqual(["web@1.service", "api@1.service"]);
    expect(d.refused.size).toBe(0);
  });

  it("the refusal reaches the host's report, and a rollout waiting for that host fails naming unit, host and rule", () => {
    const s = spec("s", [unit("web@1.service", { machineId: "m-2" })]);
    const desired = desiredForHost([s], new Map([["s", doc(s, { "web@1.service": ["h1"] })]]), "h1", {}, "m-1");
    const [report] = buildReports({
      node: "h1",
      desired,
      owned: [],
      states: new Map(),
      applied: new Map(),
      facts: NO_FACTS,
      archives: new Map(),
    });
    const why = "placement of web@1.service on h1 refused: MachineID=m-2 is not this machine (m-1)";
    expect(report?.errors).toEqual([why]);
    const reports = new Map([["h1", { ...report!, updatedAt: "" }]]);
    expect(decide([{ name: "web@1.service", hosts: ["h1"] }], 4, reports)).toEqual({
      kind: "failed",
      unit: "web@1.service",
      host: "h1",
      reason: why,
    });
  });
});
