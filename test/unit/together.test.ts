/**
 * A service's units stay together, as tables: which units the planner keeps with the service (and
 * how, per backend), where the scheduler puts them, and the warning for a Requires=/After= that
 * would be dropped because two units land on different machines.
 */
import { describe, expect, it } from "vitest";
import { planDeployment, type DeploymentRequest, type PlanInputUnit } from "../../controller/plan/plan-deployment.js";
import { droppedDependencies, hasNoPlacementOfItsOwn } from "../../controller/plan/together.js";
import { AGENTS_UNIT_RULES, FLEET_UNIT_RULES } from "../../controller/scheduler/unit-rules.js";
import type { Placement } from "../../shared/placement.js";
import { schedule, type Machine } from "../../shared/schedule.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

const unitText = (xfleet: string, xhouston = "") =>
  `[Unit]\nDescription=%p\n\n[Service]\nExecStart=/bin/sleep infinity\n${xfleet ? `\n[X-Fleet]\n${xfleet}\n` : ""}${xhouston ? `\n[X-Houston]\n${xhouston}\n` : ""}`;
const input = (name: string, role: "service" | "dependency", text: string): PlanInputUnit => ({
  name,
  version: "1",
  role,
  template: { text, source: `units/${role}/${name}.service` },
});
const req: DeploymentRequest = {
  environment: "t",
  type: "service",
  name: "hello",
  version: "1",
  group: null,
  dependencies: true,
};
const plan = (service: string, store: string, rules = AGENTS_UNIT_RULES, type: DeploymentRequest["type"] = "service") =>
  planDeployment(
    {
      variables: {},
      units: [input("store", "dependency", store), input("hello", "service", service)],
      files: [],
      filesSource: "f",
    },
    { ...req, type, version: type === "service" ? "1" : null },
    rules,
  ).units;
const named = (units: UnitSpec[], name: string): UnitSpec => {
  const u = units.find((x) => x.name === name);
  if (!u) throw new Error(`no ${name}`);
  return u;
};

const p = (o: Partial<Placement> = {}): Placement => ({ global: false, metadata: {}, ...o });
describe("hasNoPlacementOfItsOwn", () => {
  const service = p({ metadata: { role: ["web"] } });
  const cases: [string, Placement, boolean][] = [
    ["nothing at all", p(), true],
    ["the service's metadata", p({ metadata: { role: ["web"] } }), true],
    ["other metadata", p({ metadata: { role: ["db"] } }), false],
    ["more metadata", p({ metadata: { role: ["web"], disk: ["ssd"] } }), false],
    ["Global=true", p({ global: true }), false],
    ["MachineOf=", p({ machineOf: ["x.service"] }), false],
    ["MachineID=", p({ machineId: "h1" }), false],
    ["Conflicts=", p({ conflicts: ["x@*"] }), false],
    ["Instances=2", p({ instances: 2 }), false],
  ];
  for (const [title, own, together] of cases)
    it(`${title}: ${together ? "with the service" : "its own"}`, () =>
      expect(hasNoPlacementOfItsOwn(own, service)).toBe(together));
});

describe("planDeployment keeps a service's units together", () => {
  it("agents: a dependency with no placement of its own is marked together; one with its own is not", () => {
    const units = plan(unitText("MachineMetadata=role=web"), unitText(""));
    expect(named(units, "hello-store@1.service").together).toBe(true);
    expect(named(units, "hello@1.service").together).toBeUndefined();
    const own = plan(unitText("MachineMetadata=role=web"), unitText("MachineMetadata=role=db"));
    expect(named(own, "hello-store@1.service").together).toBeUndefined();
  });
  it("fleet: written as fleet understands it, MachineOf= the service's unit, or Global= with its metadata", () => {
    const single = named(plan(unitText(""), unitText(""), FLEET_UNIT_RULES), "hello-store@1.service");
    expect(single.together).toBeUndefined();
    expect(single.text).toMatch(/\[X-Fleet\]\nMachineOf=hello@1\.service\n/);
    expect(single.placements).toEqual([{ global: false, metadata: {}, machineOf: ["hello@1.service"] }]);
    const global = named(
      plan(unitText("Global=true\nMachineMetadata=role=web"), unitText("MachineMetadata=role=web"), FLEET_UNIT_RULES),
      "hello-store@1.service",
    );
    expect(global.text).toMatch(/\[X-Fleet\]\nGlobal=true\nMachineMetadata=role=web\n/);
    expect(global.placements).toEqual([{ global: true, metadata: { role: ["web"] } }]);
  });
  it("a standalone stack has no service to keep its units with", () => {
    const units = plan(unitText(""), unitText(""), AGENTS_UNIT_RULES, "standalone");
    expect(units.some((u) => u.together)).toBe(false);
  });
});

describe("schedule: together units go where the service goes", () => {
  const machines: Machine[] = ["a", "b", "c"].map((node) => ({ node, meta: { role: "web" }, state: "up" }));
  const spec = (units: UnitSpec[]): StackSpec => ({
    schema: 1,
    stack: "hello",
    generation: 1,
    environment: "t",
    createdAt: "",
    deployment: { type: "service", name: "hello", version: "1", group: null },
    units,
  });
  const run = (units: UnitSpec[]) =>
    schedule({ specs: [spec(units)], machines, previous: new Map(), scheduler: "a", now: "" }).get("hello")?.units;
  it("a singleton service and its singleton dependency: one machine", () => {
    const units = plan(unitText(""), unitText(""));
    const placed = run(units);
    expect(placed?.["hello-store@1.service"]).toEqual(placed?.["hello@1.service"]);
    expect(placed?.["hello@1.service"]).toHaveLength(1);
  });
  it("Instances=2: the dependency on both of its machines", () => {
    const placed = run(plan(unitText("", "Instances=2"), unitText("")));
    expect(placed?.["hello@1.service"]).toHaveLength(2);
    expect(placed?.["hello-store@1.service"]).toEqual(placed?.["hello@1.service"]);
  });
  it("a unit MachineOf= a together unit goes where the service goes", () => {
    const units = plan(unitText(""), unitText(""));
    const cache: UnitSpec = {
      ...named(units, "hello-store@1.service"),
      name: "hello-cache@1.service",
      component: "cache",
      together: undefined,
      placements: [{ global: false, metadata: {}, machineOf: ["hello-store@1.service"] }],
    };
    const placed = run([...units, cache]);
    expect(placed?.["hello-cache@1.service"]).toEqual(placed?.["hello@1.service"]);
  });
});

describe("droppedDependencies", () => {
  const units = plan(unitText(""), unitText("MachineMetadata=role=db"));
  it("names both units and machines, and how to keep them together", () => {
    const w = droppedDependencies(
      units,
      new Map([
        ["hello-store@1.service", ["c"]],
        ["hello@1.service", ["a"]],
      ]),
    );
    expect(w).toEqual([
      "hello@1.service needs hello-store@1.service (Requires=/After=), but on a it runs without it (hello-store@1.service runs on c): the dependency is dropped there. To keep them together, give hello-store@1.service no placement of its own, or [X-Fleet] MachineOf=hello-store@1.service to hello@1.service",
    ]);
  });
  it("nothing when they share the machine", () => {
    expect(
      droppedDependencies(
        units,
        new Map([
          ["hello-store@1.service", ["a", "b"]],
          ["hello@1.service", ["a"]],
        ]),
      ),
    ).toEqual([]);
  });
});
