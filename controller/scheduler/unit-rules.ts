/**
 * What a backend allows in the unit files rendered for it (pure): the planner
 * (controller/plan/plan-deployment.ts) asks these rules and never which backend it plans for.
 * Houston's agents run several copies of a unit, share a socket between versions, and run a
 * deployment's chain on one machine (Requires= binds the units' lifetimes); fleet runs one copy,
 * has no shared sockets, and may put the units of one chain on different machines, so each needs
 * the file unit (global, always beside it) and only Wants= its predecessor. Only the agents stop an
 * old version before they start the new one (an upgrade by replacement, controller/plan/strategy.ts),
 * and only they hand each version its own port (ServicePort=auto: a drop-in written before the start).
 */

export interface UnitRules {
  /** a unit asking for [X-Houston] Instances=n (n > 1): why it is refused, or null */
  refuseInstances(n: number): string | null;
  /** [X-Houston] Socket= on the service unit: why it is refused, or null */
  refuseSocket: string | null;
  /** how a unit needs the one before it in the chain (the file unit is always required) */
  chainNeed(previousIsArchive: boolean): "Requires" | "Wants";
  /** every unit also requires the deployment's file unit (not only the first of the chain) */
  eachRequiresArchive: boolean;
  /** why a new version cannot be stopped-then-started host by host here (null: it can) */
  refuseReplace: string | null;
  /** [X-Houston] ServicePort=auto or a range: why this backend cannot hand each version its port (null: it can) */
  refuseDynamicPort: string | null;
  /**
   * how a service's units with no placement of their own are kept with the service: "follow" (the
   * spec marks them `together`, the scheduler and each agent put them where the service runs) or
   * "fleet" (written into their [X-Fleet] as fleet understands it: MachineOf= the service's unit,
   * or Global= and the service's metadata)
   */
  together: "follow" | "fleet";
  /** an [X-Fleet] key this backend does not act on: why it is refused (null: it is read) */
  refuseFleetKey(key: string): string | null;
  /** fleet's old spellings of [X-Fleet] keys this backend reads as the new ones (X-ConditionMachineMetadata=) */
  fleetKeyAliases: Readonly<Record<string, string>>;
}

/** the [X-Fleet] keys Houston's agents place by (shared/placement.ts) */
const AGENT_FLEET_KEYS = ["MachineMetadata", "MachineID", "MachineOf", "Conflicts", "Global"];
/** fleet's deprecated spellings, which fleet v1.0 still reads */
const FLEET_OLD_NAMES: Record<string, string> = {
  "X-ConditionMachineMetadata": "MachineMetadata",
  "X-ConditionMachineID": "MachineID",
  "X-ConditionMachineOf": "MachineOf",
  "X-Conflicts": "Conflicts",
};

/**
 * Under the agents, an [X-Fleet] key they do not read would be ignored: the unit placed anywhere.
 * (fleet's old names are read as the new ones before this is asked: FLEET_OLD_NAMES)
 */
function refuseAgentFleetKey(key: string): string | null {
  if (AGENT_FLEET_KEYS.includes(key)) return null;
  return `[X-Fleet] ${key}= is not placed by Houston's agents (they read ${AGENT_FLEET_KEYS.join(", ")}; this environment's scheduler is agents)`;
}

export const AGENTS_UNIT_RULES: UnitRules = {
  refuseInstances: () => null,
  refuseSocket: null,
  chainNeed: () => "Requires",
  eachRequiresArchive: false,
  refuseReplace: null,
  refuseDynamicPort: null,
  together: "follow",
  refuseFleetKey: refuseAgentFleetKey,
  // as fleet v1.0 reads them: units written for fleet before MachineMetadata= keep their placement
  fleetKeyAliases: FLEET_OLD_NAMES,
};

export const FLEET_UNIT_RULES: UnitRules = {
  refuseInstances: (n) =>
    `[X-Houston] Instances=${n} needs the agents scheduler: fleet runs one copy of a unit (this environment's scheduler is fleet)`,
  refuseSocket: "[X-Houston] Socket= needs the agents scheduler (this environment's scheduler is fleet)",
  chainNeed: (previousIsArchive) => (previousIsArchive ? "Requires" : "Wants"),
  eachRequiresArchive: true,
  refuseReplace:
    "fleet starts the units itself, so it cannot stop the old version before it starts the new one (use the agents scheduler, or Socket=)",
  refuseDynamicPort:
    "needs the agents scheduler: fleet starts the units itself, before an agent could hand the unit its port (this environment's scheduler is fleet)",
  together: "fleet",
  // fleet reads its own section, old names and Replaces= included
  refuseFleetKey: () => null,
  // fleet reads its old names itself: the text goes to it as written
  fleetKeyAliases: {},
};
