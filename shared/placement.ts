/**
 * Which hosts a unit belongs on, with fleet's [X-Fleet] semantics:
 *  - MachineMetadata=k=v (repeatable, several pairs per line): for one key any listed value
 *    matches; every key listed must match.
 *  - Global=true and units with no [X-Fleet] placement run on every host with an agent.
 *  - A unit's `hosts` allowlist (set by rollouts for canaries and batches) narrows this further.
 * Houston has no single-machine scheduler: a non-global unit runs on every matching host.
 */
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { entries, splitWords, type UnitFile } from "./unit-file.js";

export const PlacementSchema = z.object({
  global: z.boolean(),
  metadata: z.record(z.array(z.string())),
});
export type Placement = z.infer<typeof PlacementSchema>;

/**
 * [X-Fleet] of a unit as a placement. Malformed MachineMetadata words (no '=', empty key or value,
 * unbalanced quotes) are errors naming source:line: dropping them would send the unit to every
 * host or to none.
 */
export function placementOf(unit: UnitFile, source: string): Placement {
  const metadata: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const entry of entries(unit, "X-Fleet", "MachineMetadata")) {
    const fail = (detail: string): never => {
      throw new ConfigError(source, `[X-Fleet] MachineMetadata=${entry.value}: ${detail}`, entry.line);
    };
    if ((entry.value.match(/"/g) ?? []).length % 2 !== 0) fail("unbalanced quotes");
    const words = splitWords(entry.value);
    if (words.length === 0) fail("no key=value pair");
    for (const word of words) {
      const eq = word.indexOf("=");
      if (eq < 0) fail(`${JSON.stringify(word)} is not key=value`);
      if (eq === 0) fail(`${JSON.stringify(word)} has an empty key`);
      const key = word.slice(0, eq);
      const v = word.slice(eq + 1);
      // `group={group}` renders empty outside a group deployment, and is then dropped (the seed's way)
      if (v === "" && key !== "group") fail(`${JSON.stringify(word)} has an empty value`);
      if (/[\u0000-\u001f\u007f]/.test(word)) fail("control characters are not accepted");
      const list = (metadata[key] ??= []);
      if (!list.includes(v)) list.push(v);
    }
  }
  const globals = entries(unit, "X-Fleet", "Global");
  for (const g of globals)
    if (!/^(true|false)$/i.test(g.value))
      throw new ConfigError(source, `[X-Fleet] Global=${g.value}: expected true or false`, g.line);
  const global = globals.some((g) => g.value.toLowerCase() === "true");
  return { global, metadata: { ...metadata } };
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
export function unitTargetsNode(
  u: { placements: Placement[]; hosts?: string[] | undefined },
  node: string,
  nodeMeta: Record<string, string>,
): boolean {
  return (u.hosts === undefined || u.hosts.includes(node)) && u.placements.some((p) => placementMatches(p, nodeMeta));
}
