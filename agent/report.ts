/**
 * Builds the per-stack status reports this host publishes at status/<node>/<stack> (pure).
 */
import { SCHEMA_VERSION, type StatusReport, type UnitStatus } from "../shared/spec.js";
import type { OwnedUnit } from "./state.js";
import type { HostDesired } from "./targeting.js";

export interface ReportInput {
  node: string;
  desired: HostDesired;
  owned: OwnedUnit[];
  /** systemd state per unit (desired or owned), with error text/log lines for failures */
  states: Map<string, Omit<UnitStatus, "name">>;
  applied: Map<string, number>;
  /** stacks with steps still to do */
  converging: Set<string>;
  errors: Map<string, string[]>;
  /** installed archive → stack */
  archives: Map<string, string>;
  /** units fleet ran here for a stack and has not stopped yet (reported until they are gone) */
  lingering?: { name: string; stack: string }[];
}

/** Reports without updatedAt (stamped when written), stacks sorted; a stack with nothing left gets none. */
export function buildReports(input: ReportInput): Omit<StatusReport, "updatedAt">[] {
  const stacks = new Set<string>([
    ...input.desired.generations.keys(),
    ...input.owned.map((u) => u.stack),
    ...input.errors.keys(),
    ...(input.lingering ?? []).map((u) => u.stack),
  ]);
  const out: Omit<StatusReport, "updatedAt">[] = [];
  for (const stack of [...stacks].sort()) {
    const names = [
      ...input.desired.units.filter((u) => u.stack === stack).map((u) => u.name),
      ...[...(input.desired.fleet ?? []), ...(input.lingering ?? [])]
        .filter((u) => u.stack === stack)
        .map((u) => u.name),
      ...input.owned.filter((u) => u.stack === stack).map((u) => u.name),
    ];
    const units: UnitStatus[] = [...new Set(names)].map((name) => ({
      name,
      ...(input.states.get(name) ?? { activeState: "unknown", subState: "unknown" }),
    }));
    const desiredHere = input.desired.generations.has(stack);
    const errors = input.errors.get(stack) ?? [];
    if (!desiredHere && units.length === 0 && errors.length === 0) continue;
    out.push({
      schema: SCHEMA_VERSION,
      node: input.node,
      stack,
      generation: input.applied.get(stack) ?? null,
      desiredGeneration: input.desired.generations.get(stack) ?? null,
      converging: input.converging.has(stack),
      units,
      archives: [...input.archives]
        .filter(([, s]) => s === stack)
        .map(([sha]) => sha)
        .sort(),
      errors,
    });
  }
  return out;
}
