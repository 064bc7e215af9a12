/**
 * Which hosts a unit belongs on, with fleet's [X-Fleet] semantics:
 *  - MachineMetadata=k=v (repeatable, several pairs per line): for one key any listed value
 *    matches; every key listed must match.
 *  - Global=true and units with no [X-Fleet] placement run on every host with an agent.
 *  - A unit's `hosts` allowlist (set by rollouts for canaries and batches) narrows this further.
 * Houston has no single-machine scheduler: a non-global unit runs on every matching host.
 */
import { z } from "zod";
import { splitWords, values, type UnitFile } from "./unit-file.js";

export const PlacementSchema = z.object({
  global: z.boolean(),
  metadata: z.record(z.array(z.string())),
});
export type Placement = z.infer<typeof PlacementSchema>;

export function placementOf(unit: UnitFile): Placement {
  const metadata: Record<string, string[]> = {};
  for (const line of values(unit, "X-Fleet", "MachineMetadata")) {
    for (const word of splitWords(line)) {
      const eq = word.indexOf("=");
      if (eq <= 0) continue;
      const key = word.slice(0, eq);
      const list = (metadata[key] ??= []);
      const v = word.slice(eq + 1);
      if (!list.includes(v)) list.push(v);
    }
  }
  const global = values(unit, "X-Fleet", "Global").some((v) => v.toLowerCase() === "true");
  return { global, metadata };
}

export function placementMatches(placement: Placement, nodeMeta: Record<string, string>): boolean {
  return Object.entries(placement.metadata).every(([key, allowed]) => {
    const have = nodeMeta[key];
    return have !== undefined && allowed.includes(have);
  });
}

/**
 * The one targeting rule, used by agents (what to run) and the controller (which hosts to wait
 * for): placements any-of, narrowed by a rollout's host allowlist when the spec sets one.
 */
export function unitTargetsNode(u: { placements: Placement[]; hosts?: string[] | undefined }, node: string, nodeMeta: Record<string, string>): boolean {
  return (u.hosts === undefined || u.hosts.includes(node)) && u.placements.some((p) => placementMatches(p, nodeMeta));
}
