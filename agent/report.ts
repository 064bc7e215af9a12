/**
 * Builds the per-stack status reports this host publishes at status/<node>/<stack> (pure): each
 * stack's units with their systemd state (and, stop then start, the units each replaced here; with
 * ServicePort=auto or a range, the port the agent chose), its generations, what the desired
 * generation deploys (its version, for the Consul UI), and its phase (stack-phase.ts) as
 * `converging` and `errors` (with the placements of the stack's generation this host refused).
 */
import { SCHEMA_VERSION, type Deployment, type StatusReport, type UnitStatus } from "../shared/spec.js";
import { allErrors, isConverging, stackErrors, stackPhase, stackRefusal, type StackFacts } from "./stack-phase.js";
import type { OwnedUnit } from "./state.js";
import type { HostDesired } from "./targeting.js";

export interface ReportInput {
  node: string;
  desired: HostDesired;
  owned: OwnedUnit[];
  /** systemd state per unit (desired or owned), with error text/log lines for failures */
  states: Map<string, Omit<UnitStatus, "name">>;
  applied: Map<string, number>;
  /** what the passes found: each stack's phase and errors */
  facts: StackFacts;
  /** installed archive → stack */
  archives: Map<string, string>;
  /** units fleet ran here for a stack and has not stopped yet (reported until they are gone) */
  lingering?: { name: string; stack: string }[];
  /** unit → the port the agent chose for it (ServicePort=auto or a range; agent/ports.ts) */
  ports?: ReadonlyMap<string, number>;
}

/** Reports without updatedAt (stamped when written), stacks sorted; a stack with nothing left gets none. */
export function buildReports(input: ReportInput): Omit<StatusReport, "updatedAt">[] {
  const stacks = new Set<string>([
    ...input.desired.generations.keys(),
    ...input.owned.map((u) => u.stack),
    ...allErrors(input.facts).keys(),
    ...input.desired.refused.keys(),
    ...(input.lingering ?? []).map((u) => u.stack),
  ]);
  const out: Omit<StatusReport, "updatedAt">[] = [];
  for (const stack of [...stacks].sort()) {
    const names = [
      ...[...input.desired.units, ...(input.lingering ?? [])].filter((u) => u.stack === stack).map((u) => u.name),
      ...input.owned.filter((u) => u.stack === stack).map((u) => u.name),
    ];
    const replaced = new Map(
      input.desired.units.flatMap((u) => (u.stack === stack && u.replacing ? [[u.name, u.replacing]] : [])),
    );
    const units: UnitStatus[] = [...new Set(names)].map((name) => {
      const r = replaced.get(name);
      const port = input.ports?.get(name);
      return {
        name,
        ...(input.states.get(name) ?? { activeState: "unknown", subState: "unknown" }),
        ...(r ? { replaced: r } : {}),
        ...(port !== undefined ? { port } : {}),
      };
    });
    const desiredHere = input.desired.generations.has(stack);
    // why this host refused a placement of the stack's generation (agent/targeting.ts)
    const errors = [...stackErrors(input.facts, stack), ...(input.desired.refused.get(stack) ?? [])];
    const refused = stackRefusal(input.facts, stack);
    if (!desiredHere && units.length === 0 && errors.length === 0) continue;
    out.push({
      schema: SCHEMA_VERSION,
      node: input.node,
      stack,
      generation: input.applied.get(stack) ?? null,
      desiredGeneration: input.desired.generations.get(stack) ?? null,
      ...versionOf(input.desired.deployments?.get(stack)),
      converging: isConverging(stackPhase(input.facts, stack)),
      units,
      archives: [...input.archives]
        .filter(([, s]) => s === stack)
        .map(([sha]) => sha)
        .sort(),
      errors,
      ...(refused ? { refused } : {}),
    });
  }
  return out;
}

/** The desired generation's deployment and version (a service's; null for global and standalone). */
function versionOf(d: Deployment | undefined): Pick<StatusReport, "version" | "deployment"> {
  return d ? { version: d.version, deployment: d } : {};
}
