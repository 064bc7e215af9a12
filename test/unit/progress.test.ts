import { archivesToKeep, windowNames } from "../../controller/rollout/progress.js";
import { describe, expect, it } from "vitest";
import {
  decide,
  makeBatches,
  noteRestarts,
  placementRefusal,
  refusal,
  removalPending,
  reasonLine,
  reportIsCurrent,
  unhealthy,
} from "../../controller/rollout/progress.js";
import { hostsForUnit, type HostView } from "../../controller/scheduler/targets.js";
import type { StatusReport } from "../../shared/spec.js";

const rep = (
  node: string,
  desired: number | null,
  units: [string, string, string?][],
  errors: string[] = [],
): StatusReport => ({
  schema: 1,
  node,
  stack: "s",
  generation: desired,
  desiredGeneration: desired,
  converging: false,
  archives: [],
  errors,
  updatedAt: "",
  units: units.map(([name, activeState, result]) => ({
    name,
    activeState,
    subState: "x",
    ...(result ? { result } : {}),
  })),
});
const reports = (...rs: StatusReport[]) => new Map(rs.map((r) => [r.node, r]));
/** a report of an agent that stays at generation `at` and refused `generation` */
const refusing = (node: string, at: number | null, generation: number | null, reason: string): StatusReport => ({
  ...rep(node, at, []),
  errors: [`not applying stacks/s generation ${generation}: ${reason}`],
  refused: { generation, reason },
});
const units = [
  { name: "a@1.service", hosts: ["h1", "h2"] },
  { name: "b@1.service", hosts: ["h1"] },
];

describe("decide", () => {
  const cases: { title: string; reports: Map<string, StatusReport>; want: unknown }[] = [
    {
      title: "no reports yet: waiting on the first unit everywhere",
      reports: reports(),
      want: { kind: "waiting", unit: "a@1.service", pending: ["h1", "h2"], done: [] },
    },
    {
      title: "a report of an older generation does not count",
      reports: reports(
        rep("h1", 4, [
          ["a@1.service", "active"],
          ["b@1.service", "active"],
        ]),
        rep("h2", 5, [["a@1.service", "active"]]),
      ),
      want: { kind: "waiting", unit: "a@1.service", pending: ["h1"], done: ["h2"] },
    },
    {
      title: "first unit done, second pending",
      reports: reports(
        rep("h1", 5, [
          ["a@1.service", "active"],
          ["b@1.service", "activating"],
        ]),
        rep("h2", 5, [["a@1.service", "active"]]),
      ),
      want: { kind: "waiting", unit: "b@1.service", pending: ["h1"], done: [] },
    },
    {
      title: "all active everywhere: done",
      reports: reports(
        rep("h1", 5, [
          ["a@1.service", "active"],
          ["b@1.service", "active"],
        ]),
        rep("h2", 6, [["a@1.service", "active"]]),
      ),
      want: { kind: "done" },
    },
    {
      title: "a later unit failing fails at once, with systemd's Result",
      reports: reports(
        rep("h1", 5, [
          ["a@1.service", "activating"],
          ["b@1.service", "failed", "exit-code"],
        ]),
      ),
      want: { kind: "failed", unit: "b@1.service", host: "h1", reason: "b@1.service failed (Result=exit-code)" },
    },
    {
      title: "an agent error for this generation fails",
      reports: reports(rep("h2", 5, [], ["install-archive abc: digest mismatch"])),
      want: { kind: "failed", unit: "a@1.service", host: "h2", reason: "install-archive abc: digest mismatch" },
    },
    {
      title: "an agent that refused this generation's spec fails it, quoting the refusal",
      reports: reports(
        rep("h1", 5, [["a@1.service", "active"]]),
        refusing("h2", 4, 5, "the spec is not signed and this agent trusts only signed specs"),
      ),
      want: {
        kind: "failed",
        unit: "a@1.service",
        host: "h2",
        reason: "h2 refused generation 5: the spec is not signed and this agent trusts only signed specs",
      },
    },
    {
      title: "a refusal of an older generation (or of an unreadable spec) is no evidence about this one",
      reports: reports(refusing("h1", null, 4, "unsigned"), refusing("h2", 4, null, "not valid JSON")),
      want: { kind: "waiting", unit: "a@1.service", pending: ["h1", "h2"], done: [] },
    },
    {
      title: "an error from an older generation is ignored",
      reports: reports(rep("h2", 4, [], ["old trouble"])),
      want: { kind: "waiting", unit: "a@1.service", pending: ["h1", "h2"], done: [] },
    },
  ];
  for (const c of cases) it(c.title, () => expect(decide(units, 5, c.reports)).toEqual(c.want));

  it("includes the unit's last log lines in the reason", () => {
    const r = rep("h1", 5, [["a@1.service", "failed", "exit-code"]]);
    r.units[0]!.log = ["boom", "exit 3"];
    const d = decide(units, 5, reports(r));
    expect(d.kind === "failed" && d.reason).toContain("last log lines:\n      boom\n      exit 3");
  });
});

describe("refusal", () => {
  it("names the first host (sorted) that refused this generation or a later one", () => {
    const rs = reports(
      rep("h0", 5, [["a@1.service", "active"]]),
      refusing("h3", 4, 6, "signed by key k2, which this agent does not trust"),
      refusing("h2", 4, 5, "unsigned"),
    );
    expect(refusal(5, rs)).toEqual({ host: "h2", reason: "h2 refused generation 5: unsigned" });
    expect(refusal(6, rs)).toEqual({
      host: "h3",
      reason: "h3 refused generation 6: signed by key k2, which this agent does not trust",
    });
    expect(refusal(7, rs)).toBeNull();
    expect(refusal(5, rs, ["h0", "h3"])?.host).toBe("h3");
  });
  it("older agents' reports (no refused field) are no refusal", () => {
    expect(refusal(5, reports(rep("h1", 4, [], ["not applying stacks/s: unsigned"])))).toBeNull();
  });
  it("while placing: only a previewed host or the scheduler's holder fails it; another host's report cannot", () => {
    // evil runs nothing of this stack, but its token may write status/evil/<any stack>
    const rs = reports(refusing("evil", null, 2 ** 53 - 1, "forged"), rep("h1", 4, [["a@1.service", "active"]]));
    const scope = [{ name: "a@2.service", hosts: ["h1", "h2"] }];
    expect(refusal(5, rs)?.host).toBe("evil"); // what the placement asked before: every reporting host
    expect(placementRefusal(5, rs, scope, "h3")).toBeNull();
    expect(placementRefusal(5, rs, scope, null)).toBeNull();
    expect(placementRefusal(5, rs, scope, "evil")?.host).toBe("evil"); // the holder will not place it
    const target = reports(refusing("h2", 4, 5, "unsigned"));
    expect(placementRefusal(5, target, scope, "h3")).toEqual({
      host: "h2",
      reason: "h2 refused generation 5: unsigned",
    });
  });
});

describe("makeBatches", () => {
  const cases: [string, string[], number, number | null, string[][]][] = [
    ["all at once by default", ["h3", "h1", "h2"], 0, null, [["h1", "h2", "h3"]]],
    ["canary then the rest", ["h1", "h2", "h3"], 1, null, [["h1"], ["h2", "h3"]]],
    ["max-parallel batches", ["h1", "h2", "h3"], 0, 2, [["h1", "h2"], ["h3"]]],
    ["canary then batches", ["h1", "h2", "h3", "h4"], 1, 2, [["h1"], ["h2", "h3"], ["h4"]]],
    ["canary larger than the fleet", ["h1"], 3, null, [["h1"]]],
    ["no hosts", [], 1, 1, []],
  ];
  for (const [title, hosts, canary, max, want] of cases)
    it(title, () => expect(makeBatches(hosts, canary, max)).toEqual(want));
});

describe("hostsForUnit and removalPending", () => {
  const hosts: HostView[] = [
    { node: "h2", meta: { role: "web" }, agent: "passing" },
    { node: "h1", meta: { role: "web" }, agent: "critical" },
    { node: "h3", meta: { role: "db" }, agent: "passing" },
  ];
  it("predicts hosts with the agents' rule, including critical agents (they must report too)", () => {
    expect(hostsForUnit({ placements: [{ global: false, metadata: { role: ["web"] } }] }, hosts)).toEqual(["h1", "h2"]);
    expect(hostsForUnit({ placements: [{ global: true, metadata: {} }], hosts: ["h3"] }, hosts)).toEqual(["h3"]);
  });
  it("a removal is pending while any host still lists a removed unit", () => {
    expect(
      removalPending(
        ["a@1.service"],
        reports(rep("h1", 6, [["a@1.service", "active"]]), rep("h2", 6, [["b@1.service", "active"]])),
      ),
    ).toEqual(["h1"]);
    expect(removalPending(["a@1.service"], reports(rep("h2", 6, [])))).toEqual([]);
  });
});

describe("archivesToKeep", () => {
  const rec = (result: "success" | "failed" | "rolled-back" | "removed", archive: string | null) => ({
    result,
    units: archive ? [{ archive } as unknown as import("../../shared/spec.js").UnitSpec] : [],
  });
  it("keeps the archives of the last N successful deployments only", () => {
    const h = [rec("success", "a"), rec("success", "b"), rec("failed", "x"), rec("success", null), rec("success", "c")];
    expect([...archivesToKeep(h, 2)]).toEqual(["c"]);
    expect([...archivesToKeep(h, 3)].sort()).toEqual(["b", "c"]);
    expect([...archivesToKeep(h, 10)].sort()).toEqual(["a", "b", "c"]);
  });
});

describe("unhealthy (within the window)", () => {
  const all = (state: string, result?: string): [string, string, string?][] => [
    ["a@1.service", state, result],
    ["b@1.service", "active"],
  ];
  const cases: { title: string; reports: Map<string, StatusReport>; want: RegExp | null }[] = [
    {
      title: "all active everywhere: healthy",
      reports: reports(rep("h1", 5, all("active")), rep("h2", 5, [["a@1.service", "active"]])),
      want: null,
    },
    {
      title: "reloading is still serving",
      reports: reports(rep("h1", 5, all("reloading")), rep("h2", 5, [["a@1.service", "active"]])),
      want: null,
    },
    {
      title: "a host without a report of this generation is no evidence (its agent is away)",
      reports: reports(rep("h1", 5, all("active")), rep("h2", 4, [["a@1.service", "failed"]])),
      want: null,
    },
    {
      title: "a unit that failed after it was active",
      reports: reports(rep("h1", 5, all("failed", "exit-code")), rep("h2", 5, [["a@1.service", "active"]])),
      want: /^h1 a@1\.service a@1\.service failed \(Result=exit-code\) within its window$/,
    },
    {
      title: "a unit restarting (Restart=) left active",
      reports: reports(rep("h1", 5, all("activating")), rep("h2", 5, [["a@1.service", "active"]])),
      want: /^h1 a@1\.service a@1\.service left active \(now activating\/x\) within its window$/,
    },
    {
      title: "a unit gone from the host's report",
      reports: reports(rep("h1", 5, [["b@1.service", "active"]]), rep("h2", 5, [["a@1.service", "active"]])),
      want: /^h1 a@1\.service a@1\.service is no longer in the host's report$/,
    },
    {
      title: "the agent's own errors",
      reports: reports(rep("h1", 5, all("active"), ["cannot write x"]), rep("h2", 5, [["a@1.service", "active"]])),
      want: /^h1 a@1\.service cannot write x$/,
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const f = unhealthy(units, 5, c.reports);
      if (c.want === null) expect(f).toBeNull();
      else expect(f && `${f.host} ${f.unit} ${f.reason}`).toMatch(c.want);
    });
});

/** A report of one unit with its subState and NRestarts. */
const restarting = (
  node: string,
  gen: number,
  activeState: string,
  subState: string,
  nRestarts?: number,
): StatusReport => ({
  ...rep(node, gen, []),
  units: [
    { name: "a@1.service", activeState, subState, ...(nRestarts !== undefined ? { nRestarts } : {}), log: ["boom"] },
  ],
});

describe("restarts: NRestarts growing or auto-restart fail the rollout, counted from the first report", () => {
  const one = [{ name: "a@1.service", hosts: ["h1"] }];
  const cases: { title: string; first: StatusReport; now: StatusReport; want: RegExp | null }[] = [
    {
      title: "unchanged NRestarts: healthy",
      first: restarting("h1", 5, "active", "running", 0),
      now: restarting("h1", 5, "active", "running", 0),
      want: null,
    },
    {
      title: "a unit kept from before with old restarts is not blamed for them",
      first: restarting("h1", 5, "active", "running", 4),
      now: restarting("h1", 5, "active", "running", 4),
      want: null,
    },
    {
      title: "NRestarts grew between two looks (it restarted and is active again)",
      first: restarting("h1", 5, "active", "running", 0),
      now: restarting("h1", 5, "active", "running", 2),
      want: /^a@1\.service restarted \(NRestarts 0 → 2\) within its window; last log lines:\n\s+boom$/,
    },
    {
      title: "caught in activating (auto-restart)",
      first: restarting("h1", 5, "active", "running", 0),
      now: restarting("h1", 5, "activating", "auto-restart", 1),
      want: /^a@1\.service restarted \(NRestarts 0 → 1, now activating\/auto-restart\) within its window/,
    },
    {
      title: "an older agent without NRestarts: states only",
      first: restarting("h1", 5, "active", "running"),
      now: restarting("h1", 5, "active", "running"),
      want: null,
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const baseline = new Map<string, number>();
      noteRestarts(baseline, one, 5, reports(c.first));
      noteRestarts(baseline, one, 5, reports(c.now));
      const f = unhealthy(one, 5, reports(c.now), baseline);
      if (c.want === null) expect(f).toBeNull();
      else expect(f?.reason).toMatch(c.want);
    });
  it("a report of an older generation sets no baseline", () => {
    const baseline = new Map<string, number>();
    noteRestarts(baseline, one, 5, reports(restarting("h1", 4, "active", "running", 3)));
    expect(baseline.size).toBe(0);
  });
  it("decide fails a unit in auto-restart before it was ever active, with its log", () => {
    const d = decide(one, 5, reports(restarting("h1", 5, "activating", "auto-restart", 1)));
    expect(d).toMatchObject({ kind: "failed", unit: "a@1.service", host: "h1" });
    expect(d.kind === "failed" && d.reason).toMatch(
      /restarted \(NRestarts 1, now activating\/auto-restart\); last log lines/,
    );
  });
});

describe("reportIsCurrent (the one rule decide and unhealthy share)", () => {
  const cases: [string, StatusReport | undefined, boolean][] = [
    ["no report", undefined, false],
    ["an agent that has seen no spec yet", rep("h1", null, []), false],
    ["an older generation", rep("h1", 4, []), false],
    ["this generation", rep("h1", 5, []), true],
    ["a later generation", rep("h1", 6, []), true],
  ];
  for (const [title, r, want] of cases) it(title, () => expect(reportIsCurrent(r, 5)).toBe(want));
});

describe("reasonLine: a failure on one line", () => {
  it.each([
    ["no log lines", "x failed (Result=exit-code)", "x failed (Result=exit-code)"],
    [
      "the last log line in place of the announcement",
      "x failed; last log lines:\n      starting\n      boom",
      "x failed; last log line: boom",
    ],
    [
      "systemd's lines after a restart are passed over for the unit's own last words",
      "x restarted; last log lines:\n      boom\n      x.service: Main process exited, code=exited, status=1/FAILURE\n      x.service: Scheduled restart job, restart counter is at 1.\n      Stopped x.service - x.\n      Started x.service - x.",
      "x restarted; last log line: boom",
    ],
    [
      "a unit that died after saying why: its words, not systemd's 'Failed with result'",
      "x failed; last log lines:\n      Started x.service - x.\n      x v2: cannot open /etc/x.conf\n      x.service: Main process exited, code=exited, status=1/FAILURE\n      x.service: Failed with result 'exit-code'.",
      "x failed; last log line: x v2: cannot open /etc/x.conf",
    ],
    [
      "a unit that failed to start (Type=notify): its words, not 'Failed to start'",
      "x failed; last log lines:\n      Starting x.service - X...\n      x: no config\n      x.service: Main process exited, code=exited, status=1/FAILURE\n      x.service: Failed with result 'exit-code'.\n      Failed to start x.service - X.",
      "x failed; last log line: x: no config",
    ],
    [
      "a unit that said nothing: how it exited, not 'Failed with result'",
      "x failed; last log lines:\n      Started x.service - x.\n      x.service: Main process exited, code=killed, status=9/KILL\n      x.service: Failed with result 'signal'.",
      "x failed; last log line: x.service: Main process exited, code=killed, status=9/KILL",
    ],
    [
      "only job lines: the last of them",
      "x failed; last log lines:\n      Started x.service - x.",
      "x failed; last log line: Started x.service - x.",
    ],
  ])("%s", (_t, reason, want) => expect(reasonLine(reason)).toBe(want));
});

describe("windowNames: a window line names the units whose window it is, the batch's others with them", () => {
  const scope = [
    { name: "shop-file-deploy@ab.service", hosts: ["h1"] },
    { name: "shop-cache@1.service", hosts: ["h1"] },
    { name: "shop@2.service", hosts: ["h1"] },
  ];
  const w = { seconds: 5, why: "Type=simple, no readiness", since: null };
  it.each([
    [
      "the longest are some of the batch",
      ["shop-cache@1.service", "shop@2.service"],
      "shop-cache@1.service, shop@2.service for 5s (Type=simple, no readiness), with shop-file-deploy@ab.service",
    ],
    [
      "every unit has it",
      scope.map((u) => u.name),
      "shop-file-deploy@ab.service, shop-cache@1.service, shop@2.service for 5s (Type=simple, no readiness)",
    ],
    [
      "none of the named is in this batch",
      ["other@1.service"],
      "shop-file-deploy@ab.service, shop-cache@1.service, shop@2.service for 5s (Type=simple, no readiness)",
    ],
  ])("%s", (_what, units, line) => {
    expect(windowNames(scope, { ...w, units })).toBe(line);
  });
});
