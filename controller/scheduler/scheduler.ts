/**
 * The scheduler seam: where units go, what the hosts say about them, and what a backend can do
 * and refuses. The controller writes specs and asks a Scheduler; a backend answers. Two backends:
 * Houston's own agents (agents.ts: one agent holds the scheduler role and writes placements/<stack>)
 * and fleet (fleet.ts: fleetd places the units). Callers never ask which one they hold; both pass
 * the same contract (test/unit/scheduler-contract.test.ts). This folder imports nothing from
 * controller/rollout/ (the rollout is its caller).
 */
import type { StackSpec, StatusReport, UnitSpec } from "../../shared/spec.js";
import type { HostView, PlacementView, UnitTarget } from "./targets.js";
import type { UnitRules } from "./unit-rules.js";

export interface Placed {
  targets: UnitTarget[];
  unplaced: { unit: string; reason: string }[];
}

/** The rollout options a backend may refuse. */
export interface RolloutAsk {
  canary: number;
  maxParallel: number | null;
}

export interface Scheduler {
  readonly name: string;

  // ---- what it can do and what it refuses ----
  /**
   * Refuses what this backend cannot roll out (a ConfigError naming the flag), before anything is
   * locked or written: fleet starts the units itself, so it refuses canaries and batches.
   */
  checkRollout(ask: RolloutAsk): void;
  /** the rules for unit files rendered for this backend (Instances=, Socket=, dependency chaining) */
  readonly unitRules: UnitRules;
  /** what every spec written for this backend carries (fleet: `scheduler: "fleet"`, for the mirror) */
  readonly specFields: Pick<StackSpec, "scheduler">;
  /** global units wait for placement too (fleet runs them: until it does, nothing does) */
  readonly placesGlobal: boolean;
  /** a line for `houston plan` about who places the units (null: nothing to say) */
  readonly planNote: string | null;
  /** the line a rollout starts with when the backend was chosen implicitly (null: nothing to say) */
  readonly rolloutNote: string | null;
  /** a unit's text as this backend runs it (fleet: with its [X-Fleet] section) */
  unitText(stack: string, unit: UnitSpec): string;
  /**
   * After a deployment of `stack` was confirmed: what the backend does besides, as lines to show
   * (fleet: the original Houston's adopted units of the stack are released, so fleet destroys
   * them, except those the deployment's `units` share the name of: taken over in place), and the
   * units it has set to destroy (see destroyedBy).
   */
  afterConfirmed(stack: string, units: readonly string[]): Promise<{ lines: string[]; destroying: string[] }>;
  /**
   * Follows (blocking queries) until the units afterConfirmed set to destroy are destroyed (fleet:
   * the scheduler agent destroyed them in fleet, which stops them on its hosts at its next tick),
   * or `deadline`; returns those still pending then. `progress` hears what is pending.
   */
  destroyedBy(
    names: readonly string[],
    deadline: number,
    progress: (pending: string[], problem: string | null) => void,
  ): Promise<string[]>;
  /**
   * The units of `stack` that run as another tool left them and that Houston keeps until a deploy of
   * the stack is confirmed (fleet: the original Houston's units adopted for it), sorted; what a
   * failed deploy with nothing of Houston's before returns to.
   */
  adoptedOf(stack: string): Promise<string[]>;

  // ---- where units go ----
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

  // ---- what the hosts say ----
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
