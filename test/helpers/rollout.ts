/** Rollout options for planner tests: the CLI's defaults (one batch, Consul confirmation, restore on failure). */
import type { PlanOptions } from "../../controller/rollout/rollout-plan.js";

export const PLAN_OPTS: PlanOptions = {
  canary: 0,
  maxParallel: null,
  skipConsul: false,
  noRemoval: false,
  delaySeconds: 5,
  maxTries: 15,
  minHealthySeconds: 0,
};
