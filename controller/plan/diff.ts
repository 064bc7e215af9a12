/**
 * What a plan changes relative to the stack spec now in Consul. Pure.
 */
import type { StackSpec, UnitSpec } from "../../shared/spec.js";

export interface PlanDiff {
  /** units the plan adds */
  added: string[];
  /** same name, same text: nothing to do on hosts */
  unchanged: string[];
  /** same name, different text: hosts rewrite and restart them */
  changed: string[];
  /** the group's units the plan does not keep (other versions, units dropped from the manifest):
   *  removed once the deployment is confirmed */
  replaced: string[];
  /** units of the stack the plan does not touch (e.g. another group) */
  untouched: string[];
}

export function diffPlan(planUnits: UnitSpec[], group: string | null, current: StackSpec | null): PlanDiff {
  const now = new Map((current?.units ?? []).map((u) => [u.name, u]));
  const planNames = new Set(planUnits.map((u) => u.name));
  const diff: PlanDiff = { added: [], unchanged: [], changed: [], replaced: [], untouched: [] };
  for (const u of planUnits) {
    const old = now.get(u.name);
    if (!old) diff.added.push(u.name);
    else if (old.text === u.text && JSON.stringify(old.placements) === JSON.stringify(u.placements))
      diff.unchanged.push(u.name);
    else diff.changed.push(u.name);
  }
  const others = (current?.units ?? []).filter((u) => !planNames.has(u.name));
  diff.replaced = replacedUnits(others, group);
  diff.untouched = others.filter((u) => !diff.replaced.includes(u.name)).map((u) => u.name);
  return diff;
}

/**
 * The one rule for what a deployment replaces: of the stack's units it does not carry (`others`),
 * those of its own group (other versions, units dropped from the manifest). Pruned once it is
 * confirmed; other groups' units are left alone.
 */
export function replacedUnits(others: Pick<UnitSpec, "name" | "group">[], group: string | null): string[] {
  return others.filter((u) => u.group === group).map((u) => u.name);
}
