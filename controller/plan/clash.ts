/**
 * Unit names are the original Houston's (global units bare, no double stack prefix), so two
 * stacks can render the same name: `shop-db:3` in stack shop and the service of stack shop-db at
 * version 3 are both shop-db@3.service. The planner refuses such a deployment (pure), naming both.
 * Likewise a stack live under one scheduler is not deployed under the other (placement.md: remove
 * it first): a failure's restore would otherwise write the old units under the new scheduler, and
 * nothing would run them.
 */
import { ConfigError } from "../../shared/errors.js";
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

export function nameClash(stack: string, units: UnitSpec[], live: StackSpec[]): string | null {
  const mine = new Set(units.map((u) => u.name));
  for (const spec of live) {
    if (spec.stack === stack) continue;
    const other = spec.units.find((u) => mine.has(u.name));
    if (other)
      return `unit ${other.name} of this deployment (stack ${stack}) has the same name as ${other.name} of stack ${spec.stack}, deployed now (generation ${spec.generation}); rename one of them (a component named after its stack is not prefixed again, and global units are not prefixed)`;
  }
  return null;
}

export function checkNameClash(stack: string, units: UnitSpec[], live: StackSpec[]): void {
  const clash = nameClash(stack, units, live);
  if (clash) throw new ConfigError("deployment", clash);
}

/** The scheduler a spec names ("agents" when it names none). */
export function specScheduler(spec: Pick<StackSpec, "scheduler">): "agents" | "fleet" {
  return spec.scheduler ?? "agents";
}

/**
 * Refuses to deploy a stack that is live under the other scheduler (exit 2, naming both, and
 * `source`: where this deployment's scheduler was chosen, a flag or the manifest's key).
 */
export function checkSameScheduler(source: string, live: StackSpec | null, wanted: Pick<StackSpec, "scheduler">): void {
  if (!live || specScheduler(live) === specScheduler(wanted)) return;
  throw new ConfigError(
    source,
    `stack ${live.stack} is live under the ${specScheduler(live)} scheduler (generation ${live.generation}, environment ${live.environment}), and this deployment would schedule it through ${specScheduler(wanted)}: remove the stack first (houston -e ${live.environment} remove ${live.stack}), or deploy it with the scheduler it runs under`,
  );
}
