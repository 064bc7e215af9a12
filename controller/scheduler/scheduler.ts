/**
 * The scheduler seam: where units go and what the hosts say about them. The controller writes
 * specs and asks a Scheduler; a backend answers. Today's backend is Houston's own agents
 * (agents.ts: one agent holds the scheduler role and writes placements/<stack>); another (fleet)
 * goes beside it in this folder and must pass the same contract (test/unit/scheduler-contract.test.ts).
 */
import type { StatusReport, UnitSpec } from "../../shared/spec.js";
import type { HostView, UnitTarget } from "../rollout/progress.js";
import type { PlacementView } from "./targets.js";

export interface Placed {
  targets: UnitTarget[];
  unplaced: { unit: string; reason: string }[];
}

export interface Scheduler {
  readonly name: string;
  /** the hosts that can run units now, with their metadata and agent health */
  hosts(): Promise<HostView[]>;
  /** what placement depends on besides the hosts: live specs and placements in force */
  view(): Promise<PlacementView>;
  /** where each unit would go if deployed now (pure; a unit no host can take is an error) */
  place(units: UnitSpec[], hosts: HostView[], view: PlacementView): UnitTarget[];
  /**
   * Where the units of a written spec generation went: waits (blocking, no polling, retrying
   * through Consul errors) until the backend has placed that generation, or the deadline
   * (TimeoutError). Global units go to the matching `hosts` (those the rollout planned with).
   */
  placed(stack: string, generation: number, units: UnitSpec[], hosts: HostView[], deadline: number): Promise<Placed>;
  /**
   * What the hosts report about a stack, followed (blocking, no polling) until `check` returns a
   * value; a TimeoutError carrying `describe()` at the deadline; ends early on `signal`.
   */
  follow<T>(
    stack: string,
    deadline: number,
    check: (reports: ReadonlyMap<string, StatusReport>) => T | undefined,
    describe: () => string,
    signal?: AbortSignal,
  ): Promise<T>;
  /** every stack's reports now, by stack then host */
  reports(): Promise<Map<string, Map<string, StatusReport>>>;
}
