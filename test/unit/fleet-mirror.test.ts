/**
 * The fleet backend's pure decisions: the units fleet gets, what to change in fleet (only
 * Houston's units are ever replaced or destroyed), /state back into placements, what the agent
 * does for a fleet stack, and what `houston adopt` takes over.
 */
import { describe, expect, it } from "vitest";
import { adoptCandidates, originalPrefixes } from "../../controller/commands/adopt.js";
import { planDeployment, type DeploymentRequest } from "../../controller/plan/plan-deployment.js";
import { reconcileHost } from "../../agent/reconcile.js";
import { archiveRequestAnswer } from "../../agent/local-socket.js";
import { desiredForHost } from "../../agent/targeting.js";
import { ConfigError } from "../../shared/errors.js";
import { unitOptions, type FleetUnit } from "../../shared/fleet.js";
import {
  desiredFleetUnits,
  fleetUnitText,
  mirrorSteps,
  placementsFromState,
  type DesiredFleetUnit,
} from "../../shared/fleet-mirror.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { SCHEMA_VERSION, type StackSpec } from "../../shared/spec.js";
import type { Manifest } from "../../controller/config/manifest.js";
import { dep, file } from "../helpers/specs.js";
import { FLEET_UNIT_RULES } from "../../controller/scheduler/unit-rules.js";

const sleeper = (xfleet: string, houston = "") =>
  `[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\n${xfleet}\n${houston}`;

const REQ: DeploymentRequest = {
  environment: "test",
  type: "standalone",
  name: "web",
  version: null,
  group: null,
  dependencies: true,
};

function fleetSpec(units: ReturnType<typeof dep>[], files = [file("/srv/web/index.html", "hi")]): StackSpec {
  const req = REQ;
  const plan = planDeployment({ units, files, filesSource: "test:files", variables: {} }, req, FLEET_UNIT_RULES);
  return {
    schema: SCHEMA_VERSION,
    stack: "web",
    generation: 3,
    environment: "test",
    deployment: plan.deployment,
    createdAt: "",
    units: plan.units,
    scheduler: "fleet",
  };
}

const spec = fleetSpec([
  dep("db", "1", sleeper("MachineMetadata=role=db")),
  dep("app", "2", sleeper("MachineMetadata=role=web")),
]);
const archive = spec.units.find((u) => u.role === "archive")!;
const desired = desiredFleetUnits([spec]);
const unit = (d: DesiredFleetUnit, state: FleetUnit["desiredState"] = "launched"): FleetUnit => ({
  name: d.name,
  options: d.options,
  desiredState: state,
});

describe("what fleet gets", () => {
  it("the file unit is global and asks the local agent for the archive; other units go verbatim", () => {
    const text = fleetUnitText("web", archive);
    expect(text).toContain(
      `--unix-socket /run/houston/agent.sock -X POST http://houston-agent/v1/archives/web/${archive.archive}`,
    );
    expect(text).toMatch(/\[X-Fleet\]\nGlobal=true/);
    const app = spec.units.find((u) => u.name === "web-app@2.service")!;
    expect(fleetUnitText("web", app)).toBe(app.text);
    // each unit needs the file unit (always beside it), and only wants its predecessor (maybe elsewhere)
    expect(app.text).toContain(`Requires=${archive.name}`);
    expect(app.text).toContain("Wants=web-db@1.service");
    expect(app.text).not.toContain("Requires=web-db@1.service");
  });

  it("the planner refuses what fleet cannot do, naming the file", () => {
    const req = { ...REQ, type: "standalone" } as const;
    const plan = () =>
      planDeployment(
        {
          units: [dep("app", "1", sleeper("MachineMetadata=role=web", "\n[X-Houston]\nInstances=2\n"))],
          files: [],
          filesSource: "f",
          variables: {},
        },
        req,
        FLEET_UNIT_RULES,
      );
    expect(plan).toThrow(ConfigError);
    expect(plan).toThrow(/test:app.*Instances=2 needs the agents scheduler/);
  });
});

describe("mirrorSteps", () => {
  const owned = new Map(desired.map((d) => [d.name, "web"]));
  it.each([
    [
      "nothing in fleet: create all, in spec order",
      [],
      new Map<string, string>(),
      desired.map((d) => `create ${d.name}`),
    ],
    ["all there with the same options: nothing", desired.map((d) => unit(d)), owned, []],
    [
      "ours, not launched: launch",
      desired.map((d, i) => unit(d, i === 0 ? "inactive" : "launched")),
      owned,
      [`launch ${desired[0]!.name}`],
    ],
    [
      "ours with other options: replace",
      desired.map((d, i) => (i === 1 ? { ...unit(d), options: unitOptions(sleeper("Global=true"), "x") } : unit(d))),
      owned,
      [`create ${desired[1]!.name}`],
    ],
    [
      "a foreign unit of the same name: reported, never touched",
      [unit(desired[0]!)],
      new Map<string, string>(),
      [`foreign ${desired[0]!.name}`, ...desired.slice(1).map((d) => `create ${d.name}`)],
    ],
    [
      "ours that no spec wants: destroyed last",
      [...desired.map((d) => unit(d)), { name: "web-app@1.service", desiredState: "launched" as const }],
      new Map([...owned, ["web-app@1.service", "web"]]),
      ["destroy web-app@1.service"],
    ],
    [
      "a foreign unit nobody wants: left alone",
      [...desired.map((d) => unit(d)), { name: "other.service", desiredState: "launched" as const }],
      owned,
      [],
    ],
  ])("%s", (_t, inFleet, own, want) => {
    expect(mirrorSteps(desired, inFleet, own).map((s) => `${s.kind} ${s.name}`)).toEqual(want);
  });

  it("adopted units are taken over in place when wanted (left as they run), never destroyed by the mirror", () => {
    const adopted = new Map([
      ["web-app@2.service", "web"],
      ["web-app@0.9.service", "web"],
    ]);
    const inFleet = [
      { name: "web-app@2.service", desiredState: "launched" as const },
      { name: "web-app@0.9.service", desiredState: "launched" as const },
    ];
    const steps = mirrorSteps(desired, inFleet, new Map(), adopted).map((s) => `${s.kind} ${s.name}`);
    expect(steps).not.toContain("create web-app@2.service");
    expect(steps).not.toContain("destroy web-app@0.9.service");
    // once released (owned), it is replaced like any unit of Houston's
    const released = mirrorSteps(desired, inFleet, adopted, new Map()).map((s) => `${s.kind} ${s.name}`);
    expect(released).toContain("create web-app@2.service");
  });

  it.each([
    ["a unit Houston started under an adopted name stays (it was running before)", "shop-cache@1.4.service", []],
    ["a unit only Houston started goes", "shop@2.service", ["destroy shop@2.service"]],
  ])("restore after a failed first deploy after adopt: %s", (_t, name, want) => {
    // the failed deploy's spec is gone: nothing is desired; both units are Houston's, one is also adopted
    const owned = new Map([[name, "shop"]]);
    const adopted = new Map([
      ["shop-cache@1.4.service", "shop"],
      ["shop@1.service", "shop"],
    ]);
    const inFleet = [name, "shop@1.service"].map((n) => ({ name: n, desiredState: "launched" as const }));
    expect(mirrorSteps([], inFleet, owned, adopted).map((s) => `${s.kind} ${s.name}`)).toEqual(want);
  });
});

describe("placementsFromState", () => {
  const nodes = new Map([
    ["m1", "a"],
    ["m2", "b"],
    ["m3", "c"],
  ]);
  const st = (name: string, machineID: string) => ({ name, machineID, systemdActiveState: "active" });
  const prevDoc = (units: Record<string, string[]>): Map<string, PlacementDoc> =>
    new Map([
      [
        "web",
        { schema: 1, stack: "web", generation: 3, units, unplaced: {}, moves: [], scheduler: "x", updatedAt: "t0" },
      ],
    ]);

  it("maps machines to nodes, global units on each, problems as unplaced", () => {
    const docs = placementsFromState(
      [spec],
      [st(archive.name, "m1"), st(archive.name, "m2"), st("web-db@1.service", "m3"), st("zzz.service", "m1")],
      nodes,
      new Map([["web-app@2.service", "fleet PUT unit: 400 bad"]]),
      "a",
      "t1",
      new Map(),
      new Set(["a", "b", "c"]),
    );
    const doc = docs.get("web")!;
    expect(doc.units).toEqual({ [archive.name]: ["a", "b"], "web-db@1.service": ["c"] });
    expect(doc.unplaced).toEqual({ "web-app@2.service": "fleet PUT unit: 400 bad" });
    expect(doc.generation).toBe(3);
  });

  it("a singleton lost with its machine, then started elsewhere by fleet, is one recorded move", () => {
    const lost = placementsFromState(
      [spec],
      [],
      nodes,
      new Map(),
      "a",
      "t1",
      prevDoc({ "web-db@1.service": ["c"] }),
      new Set(["a", "b"]),
    );
    expect(lost.get("web")!.moves).toEqual([
      { unit: "web-db@1.service", from: "c", to: null, reason: "fleet lost its machine", at: "t1" },
    ]);
    const back = placementsFromState(
      [spec],
      [st("web-db@1.service", "m2")],
      nodes,
      new Map(),
      "a",
      "t2",
      lost,
      new Set(["a", "b"]),
    );
    expect(back.get("web")!.moves).toEqual([
      { unit: "web-db@1.service", from: "c", to: "b", reason: "fleet moved it", at: "t2" },
    ]);
    // gone while its machine is still there (fleet replacing it): no move
    const replaced = placementsFromState([spec], [], nodes, new Map(), "a", "t3", back, new Set(["a", "b"]));
    expect(replaced.get("web")!.moves).toHaveLength(1);
  });
});

describe("the agent and a fleet stack", () => {
  const doc: PlacementDoc = {
    schema: 1,
    stack: "web",
    generation: 3,
    units: { "web-app@2.service": ["a"], [archive.name]: ["a", "b"] },
    unplaced: {},
    moves: [],
    scheduler: "x",
    updatedAt: "",
  };
  it("writes and starts nothing itself: reports what fleet placed here, installs the files", () => {
    const d = desiredForHost([spec], new Map([["web", doc]]), "a", { role: "web" });
    expect(d.units.filter((u) => u.runner === "agent")).toEqual([]);
    expect(
      d.units
        .filter((u) => u.runner === "fleet")
        .map((u) => u.name)
        .sort(),
    ).toEqual([archive.name, "web-app@2.service"].sort());
    expect([...d.archives.keys()]).toEqual([archive.archive]);
    const plan = reconcileHost({ owned: [], foreign: new Map(), archives: new Map(), registrationsStale: false }, d);
    expect([...plan.steps, ...plan.afterReport].map((s) => s.kind)).toEqual(["install-archive"]);
  });

  it("answers the file unit's request only for an archive of an accepted fleet spec meant for this host", () => {
    const base = {
      specs: [spec],
      installed: new Map<string, string>(),
      errors: [],
      node: "a",
      meta: {},
      stack: "web",
      sha: archive.archive!,
    };
    expect(archiveRequestAnswer(base)).toBeNull(); // not installed yet: wait
    expect(archiveRequestAnswer({ ...base, installed: new Map([[archive.archive!, "web"]]) })?.status).toBe(200);
    expect(archiveRequestAnswer({ ...base, errors: ["disk full"] })).toEqual({ status: 500, message: "disk full" });
    expect(archiveRequestAnswer({ ...base, sha: "0".repeat(64) })).toBeNull(); // no such archive (yet)
    expect(archiveRequestAnswer({ ...base, stack: "other" })).toBeNull();
    expect(archiveRequestAnswer({ ...base, specs: [{ ...spec, scheduler: undefined }] })).toBeNull();
  });
});

describe("houston adopt", () => {
  const manifest = {
    file: "manifest.yaml",
    environments: {},
    variables: {},
    globalUnits: [{ name: "logger", version: "1", environment: null, line: 1 }],
    standalone: { tools: [{ name: "cron", version: "1", environment: null, line: 1 }] },
    services: { shop: [{ name: "cache", version: "1", environment: null, line: 1 }] },
  } satisfies Manifest;
  it("takes the original's names of this config's stacks, leaves the rest and what Houston has", () => {
    const prefixes = originalPrefixes(manifest, ["shop", "blog"]);
    const { adopt, foreign } = adoptCandidates(
      prefixes,
      [
        "logger@1.service",
        "shop@0.9.service",
        "shop-cache@0.9.service",
        "shop-file-deploy@0a1b2c3d.service",
        "blog@3.service",
        "tools-cron@1.service",
        "tools@1.service",
        "unrelated@1.service",
        "shop@1.0.service",
      ],
      { schema: 1, units: { "shop@1.0.service": "shop" } },
    );
    expect(adopt).toEqual([
      { name: "blog@3.service", stack: "blog" },
      { name: "logger@1.service", stack: "global" },
      { name: "shop-cache@0.9.service", stack: "shop" },
      { name: "shop-file-deploy@0a1b2c3d.service", stack: "shop" },
      { name: "shop@0.9.service", stack: "shop" },
      { name: "tools-cron@1.service", stack: "tools" },
    ]);
    expect(foreign).toEqual(["tools@1.service", "unrelated@1.service"]);
  });
});
