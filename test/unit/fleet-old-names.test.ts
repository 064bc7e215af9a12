/**
 * fleet's old [X-Fleet] spellings (X-ConditionMachineMetadata= and the like, which fleet v1.0
 * still reads): under the agents they place the unit as the new names do, and the unit text says
 * the new name; under fleet the text goes to fleet as written.
 */
import { describe, expect, it } from "vitest";
import { planDeployment, type DeploymentRequest } from "../../controller/plan/plan-deployment.js";
import { FLEET_UNIT_RULES } from "../../controller/scheduler/unit-rules.js";

const req: DeploymentRequest = {
  environment: "test",
  type: "standalone",
  name: "web",
  version: null,
  group: null,
  dependencies: true,
};
const plan = (xfleet: string, rules?: typeof FLEET_UNIT_RULES) =>
  planDeployment(
    {
      variables: {},
      units: [
        {
          name: "app",
          version: "1",
          role: "dependency",
          template: {
            text: `[Service]\nExecStart=/bin/true\n[X-Fleet]\n${xfleet}\n`,
            source: "units/shared/app.service",
          },
        },
        {
          name: "db",
          version: "1",
          role: "dependency",
          template: { text: "[Service]\nExecStart=/bin/true\n", source: "units/shared/db.service" },
        },
      ],
      files: [],
      filesSource: "files/web.yaml",
    },
    req,
    rules,
  ).units.find((u) => u.name === "web-app@1.service");

describe("fleet's old [X-Fleet] names under the agents", () => {
  it.each([
    ["X-ConditionMachineMetadata=role=db", { global: false, metadata: { role: ["db"] } }, "MachineMetadata=role=db"],
    ["X-ConditionMachineID=h1", { global: false, metadata: {}, machineId: "h1" }, "MachineID=h1"],
    [
      "X-ConditionMachineOf=db.service",
      { global: false, metadata: {}, machineOf: ["web-db@1.service"] },
      "MachineOf=web-db@1.service",
    ],
    ["X-Conflicts=db*", { global: false, metadata: {}, conflicts: ["db*"] }, "Conflicts=db*"],
  ])("%s is placed as the new name", (line, placement, written) => {
    const u = plan(line);
    expect(u?.placements[0]).toMatchObject(placement);
    expect(u?.text).toContain(`[X-Fleet]\n${written}`);
    expect(u?.text).not.toContain("X-Condition");
  });

  it("under fleet the old name goes to fleet as written", () => {
    expect(plan("X-ConditionMachineMetadata=role=db", FLEET_UNIT_RULES)?.text).toContain(
      "X-ConditionMachineMetadata=role=db",
    );
  });
});
