/**
 * The scheduler's decision as tables: fleet v1.0's [X-Fleet] semantics (one machine, MachineID,
 * MachineOf, Conflicts, least-loaded, deterministic ties), Houston's Instances=, stability,
 * machine loss, and what cannot be placed.
 */
import { describe, expect, it } from "vitest";
import { globMatch, machineStates, schedule, type Machine, type PlacementDoc } from "../../shared/schedule.js";
import type { Placement } from "../../shared/placement.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

const m = (node: string, meta: Record<string, string> = {}, state: Machine["state"] = "up"): Machine => ({
  node,
  meta,
  state,
  machineId: `id-${node}`,
  ...(state === "up" ? {} : { why: `houston-agent on ${node} critical for 31s (grace 30s)` }),
});
const u = (name: string, p: Partial<Placement> = {}, extra: Partial<UnitSpec> = {}): UnitSpec => ({
  name,
  stack: "s",
  component: name.split("@")[0] ?? null,
  group: null,
  version: name.split("@")[1]?.replace(".service", "") ?? "1",
  role: "dependency",
  text: "[Service]\nExecStart=/bin/true\n",
  placements: [{ global: false, metadata: {}, ...p }],
  ...extra,
});
const spec = (units: UnitSpec[], stack = "s", generation = 1): StackSpec => ({
  schema: 1,
  stack,
  generation,
  environment: "e",
  createdAt: "",
  deployment: { type: "standalone", name: stack, version: null, group: null },
  units: units.map((x) => ({ ...x, stack })),
});
const run = (specs: StackSpec[], machines: Machine[], previous = new Map<string, PlacementDoc>()) =>
  schedule({ specs, machines, previous, scheduler: "h0", now: "2026-11-27T00:00:00.000Z" });
/** unit → hosts over all stacks */
const where = (docs: Map<string, PlacementDoc>): Record<string, string[]> =>
  Object.assign({}, ...[...docs.values()].map((d) => d.units)) as Record<string, string[]>;
const why = (docs: Map<string, PlacementDoc>): Record<string, string> =>
  Object.assign({}, ...[...docs.values()].map((d) => d.unplaced)) as Record<string, string>;

const ABC = [m("a", { role: "web" }), m("b", { role: "web" }), m("c", { role: "db" })];

describe("schedule: fleet's placement", () => {
  const cases: {
    title: string;
    specs: StackSpec[];
    machines?: Machine[];
    placed?: Record<string, string[]>;
    unplaced?: Record<string, RegExp>;
  }[] = [
    {
      title: "one machine each, least loaded first, ties by node name",
      specs: [spec([u("x@1.service"), u("y@1.service"), u("z@1.service"), u("w@1.service")])],
      placed: { "x@1.service": ["a"], "y@1.service": ["b"], "z@1.service": ["c"], "w@1.service": ["a"] },
    },
    {
      title: "MachineMetadata= limits the candidates",
      specs: [
        spec([u("x@1.service", { metadata: { role: ["db"] } }), u("y@1.service", { metadata: { role: ["web"] } })]),
      ],
      placed: { "x@1.service": ["c"], "y@1.service": ["a"] },
    },
    {
      title: "MachineID= pins, by node name or machine ID",
      specs: [spec([u("x@1.service", { machineId: "b" }), u("y@1.service", { machineId: "id-c" })])],
      placed: { "x@1.service": ["b"], "y@1.service": ["c"] },
    },
    {
      title: "MachineID= of a machine that is not there: unplaced",
      specs: [spec([u("x@1.service", { machineId: "zz" })])],
      placed: { "x@1.service": [] },
      unplaced: {
        "x@1.service": /^no machine satisfies MachineID=zz \(a does not match; b does not match; c does not match\)$/,
      },
    },
    {
      title: "MachineOf= follows the named unit, even listed before it",
      specs: [
        spec([
          u("app@1.service", { machineOf: ["db@1.service"] }),
          u("x@1.service"),
          u("db@1.service", { metadata: { role: ["db"] } }),
        ]),
      ],
      placed: { "db@1.service": ["c"], "app@1.service": ["c"], "x@1.service": ["a"] },
    },
    {
      title: "MachineOf= a unit that is nowhere: unplaced",
      specs: [spec([u("app@1.service", { machineOf: ["ghost@1.service"] })])],
      unplaced: {
        "app@1.service": /no machine satisfies MachineOf=ghost@1.service .*ghost@1.service is not scheduled/,
      },
    },
    {
      title: "MachineOf= a global unit: any machine it runs on",
      specs: [
        spec([
          u("g@1.service", { global: true, metadata: { role: ["db"] } }),
          u("app@1.service", { machineOf: ["g@1.service"] }),
        ]),
      ],
      placed: { "app@1.service": ["c"] },
    },
    {
      title: "Conflicts= keeps it away from matching units",
      specs: [
        spec([
          u("db@1.service"),
          u("db@2.service", { conflicts: ["db@*"] }),
          u("db@3.service", { conflicts: ["db@*"] }),
        ]),
      ],
      placed: { "db@1.service": ["a"], "db@2.service": ["b"], "db@3.service": ["c"] },
    },
    {
      title: "Conflicts= works both ways (the placed unit's own Conflicts= keeps others away)",
      specs: [
        spec([u("lonely@1.service", { conflicts: ["*"] }), u("x@1.service"), u("y@1.service"), u("z@1.service")]),
      ],
      placed: { "lonely@1.service": ["a"], "x@1.service": ["b"], "y@1.service": ["c"], "z@1.service": ["b"] },
    },
    {
      title: "conflicts everywhere: unplaced, saying what no machine satisfies and why",
      specs: [
        spec([
          u("db@1.service", { metadata: { role: ["db"] }, conflicts: ["db@*"] }),
          u("db@2.service", { metadata: { role: ["db"] }, conflicts: ["db@*"] }),
        ]),
      ],
      placed: { "db@1.service": ["c"], "db@2.service": [] },
      unplaced: {
        "db@2.service":
          /^no machine satisfies role=db, Conflicts=db@\* \(a does not match; b does not match; c runs db@1.service \(Conflicts=db@\*\)\)$/,
      },
    },
    {
      title: "Instances=N: N distinct machines",
      specs: [spec([u("web@1.service", { metadata: { role: ["web"] }, instances: 2 })])],
      placed: { "web@1.service": ["a", "b"] },
    },
    {
      title: "Instances= above the machines that qualify: the ones there are, and the shortfall named",
      specs: [spec([u("web@1.service", { metadata: { role: ["web"] }, instances: 3 })])],
      placed: { "web@1.service": ["a", "b"] },
      unplaced: { "web@1.service": /no machine satisfies role=web, Instances=3 for 1 of 3 instances/ },
    },
    {
      title: "no machines at all",
      specs: [spec([u("x@1.service")])],
      machines: [],
      unplaced: { "x@1.service": /no machine satisfies any machine \(no machines\)/ },
    },
    {
      title: "suspect machines take no new units; lost ones neither",
      specs: [spec([u("x@1.service"), u("y@1.service")])],
      machines: [m("a", {}, "suspect"), m("b", {}, "lost"), m("c")],
      placed: { "x@1.service": ["c"], "y@1.service": ["c"] },
    },
    {
      title: "global units are not placed (each agent runs them) but count for conflicts",
      specs: [
        spec([
          u("g@1.service", { global: true, metadata: { role: ["web"] } }),
          u("x@1.service", { conflicts: ["g@*"] }),
        ]),
      ],
      placed: { "x@1.service": ["c"] },
    },
    {
      title: "a rollout's allowlist: only there; an empty one defers without an error",
      specs: [spec([u("x@1.service", {}, { hosts: ["b"] }), u("y@1.service", {}, { hosts: [] })])],
      placed: { "x@1.service": ["b"], "y@1.service": [] },
      unplaced: {},
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const docs = run(c.specs, c.machines ?? ABC);
      if (c.placed) expect(where(docs)).toMatchObject(c.placed);
      const got = why(docs);
      if (c.unplaced) {
        expect(Object.keys(got).sort()).toEqual(Object.keys(c.unplaced).sort());
        for (const [k, re] of Object.entries(c.unplaced)) expect(got[k]).toMatch(re);
      } else expect(got).toEqual({});
    });

  it("archives go where the deployment's units go, sockets where the service goes", () => {
    const docs = run(
      [
        spec([
          u("s.socket", {}, { role: "socket", version: "socket", component: null }),
          u("s-file-deploy@abc.service", {}, { role: "archive", archive: "a".repeat(64) }),
          u("s-db@1.service", { metadata: { role: ["db"] } }),
          u("s@1.service", { metadata: { role: ["web"] }, instances: 2 }, { role: "service", component: null }),
        ]),
      ],
      ABC,
    );
    expect(where(docs)).toEqual({
      "s-db@1.service": ["c"],
      "s@1.service": ["a", "b"],
      "s-file-deploy@abc.service": ["a", "b", "c"],
      "s.socket": ["a", "b"],
    });
  });

  it("is deterministic whatever the order of machines and stacks", () => {
    const specs = [spec([u("x@1.service"), u("y@1.service")], "one"), spec([u("z@1.service")], "two")];
    expect(run([...specs].reverse(), [...ABC].reverse())).toEqual(run(specs, ABC));
  });
});

describe("schedule: stability and moves", () => {
  const first = run([spec([u("x@1.service"), u("y@1.service")])], ABC);

  it("an unchanged redeploy moves nothing, even when another machine is now emptier", () => {
    const more = [...ABC, m("d")];
    const again = run([spec([u("x@1.service"), u("y@1.service")], "s", 2)], more, first);
    expect(where(again)).toEqual(where(first));
    expect(again.get("s")?.generation).toBe(2);
    expect(again.get("s")?.moves).toEqual([]);
  });

  it("a new version prefers the machine of the version it replaces", () => {
    const up = run([spec([u("x@1.service"), u("y@1.service"), u("y@2.service")], "s", 2)], ABC, first);
    expect(where(up)["y@2.service"]).toEqual(where(first)["y@1.service"]);
  });

  it("…unless that machine no longer qualifies (Conflicts= with the old version)", () => {
    const up = run(
      [spec([u("x@1.service"), u("y@1.service"), u("y@2.service", { conflicts: ["y@*"] })], "s", 2)],
      ABC,
      first,
    );
    expect(where(up)["y@2.service"]).not.toEqual(where(first)["y@1.service"]);
  });

  it("a lost machine's units move to the least loaded machine that qualifies, and the move is recorded", () => {
    const [a, b, c] = ABC as [Machine, Machine, Machine];
    const lost = run(
      [spec([u("x@1.service"), u("y@1.service")])],
      [{ ...a, state: "lost", why: "houston-agent on a critical for 31s (grace 30s)" }, b, c],
      first,
    );
    expect(where(lost)).toEqual({ "x@1.service": ["c"], "y@1.service": ["b"] });
    expect(lost.get("s")?.moves).toEqual([
      {
        unit: "x@1.service",
        from: "a",
        to: "c",
        reason: "houston-agent on a critical for 31s (grace 30s)",
        at: "2026-11-27T00:00:00.000Z",
      },
    ]);
  });

  it("a suspect machine (unwell within grace) keeps its units", () => {
    const [a, b, c] = ABC as [Machine, Machine, Machine];
    const suspect = run([spec([u("x@1.service"), u("y@1.service")])], [{ ...a, state: "suspect" }, b, c], first);
    expect(where(suspect)).toEqual(where(first));
  });

  it("a machine that left the cluster: its units move", () => {
    const gone = run([spec([u("x@1.service"), u("y@1.service")])], ABC.slice(1), first);
    expect(where(gone)["x@1.service"]).toEqual(["c"]);
    expect(gone.get("s")?.moves[0]?.reason).toBe("a left the cluster");
  });

  it("a machine that comes back gets no unit back (nothing healthy moves)", () => {
    const gone = run([spec([u("x@1.service"), u("y@1.service")])], ABC.slice(1), first);
    const back = run([spec([u("x@1.service"), u("y@1.service")])], ABC, gone);
    expect(where(back)).toEqual(where(gone));
  });

  it("metadata changed so the machine no longer qualifies: moved, saying so", () => {
    const moved = run([spec([u("x@1.service", { metadata: { role: ["db"] } }), u("y@1.service")])], ABC, first);
    expect(where(moved)["x@1.service"]).toEqual(["c"]);
    expect(moved.get("s")?.moves[0]?.reason).toBe("a no longer satisfies role=db");
  });
});

describe("machineStates and globMatch", () => {
  it("an unwell agent is suspect within the grace period and lost after it", () => {
    const seen = [
      { node: "a", meta: {}, agent: "passing" },
      { node: "b", meta: {}, agent: "critical" },
      { node: "c", meta: {}, agent: "missing" },
    ];
    const since = new Map([
      ["b", 1_000],
      ["c", 20_000],
    ]);
    expect(machineStates(seen, since, 31_000, 30_000).map((x) => [x.node, x.state])).toEqual([
      ["a", "up"],
      ["b", "lost"],
      ["c", "suspect"],
    ]);
  });
  it("matches fleet's globs", () => {
    expect(globMatch("db@*", "db@1.service")).toBe(true);
    expect(globMatch("db@*", "shop-db@1.service")).toBe(false);
    expect(globMatch("web@?.service", "web@2.service")).toBe(true);
    expect(globMatch("web@[12].service", "web@3.service")).toBe(false);
    expect(globMatch("a.b", "axb")).toBe(false);
  });
});
