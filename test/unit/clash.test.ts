/** The original's names can collide across stacks: the planner refuses, naming both. */
import { describe, expect, it } from "vitest";
import { checkSameScheduler, nameClash } from "../../controller/plan/clash.js";
import { ConfigError } from "../../shared/errors.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

const u = (name: string, stack: string): UnitSpec => ({
  name,
  stack,
  component: null,
  group: null,
  version: "3",
  role: "service",
  text: "[Service]\nExecStart=/bin/true\n",
  placements: [{ global: false, metadata: {} }],
});
const spec = (stack: string, units: UnitSpec[]): StackSpec => ({
  schema: 1,
  stack,
  generation: 7,
  environment: "e",
  createdAt: "",
  deployment: { type: "service", name: stack, version: "3", group: null },
  units,
});

describe("nameClash", () => {
  it("a dependency named after its stack against another stack's service of that name", () => {
    const live = [spec("shop", [u("shop-db@3.service", "shop"), u("shop@1.service", "shop")])];
    expect(nameClash("shop-db", [u("shop-db@3.service", "shop-db")], live)).toBe(
      "unit shop-db@3.service of this deployment (stack shop-db) has the same name as shop-db@3.service of stack shop, deployed now (generation 7); rename one of them (a component named after its stack is not prefixed again, and global units are not prefixed)",
    );
  });
  it("a global unit against a stack's unit", () => {
    expect(nameClash("global", [u("shop@1.service", "global")], [spec("shop", [u("shop@1.service", "shop")])])).toMatch(
      /stack global.*stack shop/,
    );
  });
  it("the stack's own live spec is no clash (a redeploy), nor are distinct names", () => {
    const live = [spec("shop", [u("shop@1.service", "shop")]), spec("other", [u("other@1.service", "other")])];
    expect(nameClash("shop", [u("shop@1.service", "shop")], live)).toBeNull();
  });
});

describe("checkSameScheduler", () => {
  const live = (scheduler?: "agents" | "fleet"): StackSpec => ({
    ...spec("global", []),
    ...(scheduler ? { scheduler } : {}),
  });
  it("a stack live under the agents is not deployed through fleet, nor the other way (a restore would run nothing)", () => {
    const src = "/cfg/manifest.yaml environments.lab.fleet";
    expect(() => checkSameScheduler(src, live(), { scheduler: "fleet" })).toThrow(ConfigError);
    expect(() => checkSameScheduler(src, live(), { scheduler: "fleet" })).toThrow(
      "/cfg/manifest.yaml environments.lab.fleet: stack global is live under the agents scheduler (generation 7, environment e), and this deployment would schedule it through fleet: remove the stack first (houston -e e remove global), or deploy it with the scheduler it runs under",
    );
    // chosen by the flag: the error names the flag, not the manifest
    expect(() => checkSameScheduler("--scheduler", live("fleet"), {})).toThrow(
      /^--scheduler: stack global is live under the fleet scheduler.*through agents/,
    );
  });
  it("the same scheduler, spelled or not, and a first deploy pass", () => {
    expect(() => checkSameScheduler("lab", live(), {})).not.toThrow();
    expect(() => checkSameScheduler("lab", live("agents"), {})).not.toThrow();
    expect(() => checkSameScheduler("lab", live("fleet"), { scheduler: "fleet" })).not.toThrow();
    expect(() => checkSameScheduler("lab", null, { scheduler: "fleet" })).not.toThrow();
  });
});
