/**
 * Where a unit may run, with fleet v1.0's [X-Fleet] semantics (read here; shared/schedule.ts
 * decides among the machines):
 *  - MachineMetadata=k=v (repeatable, several pairs per line): for one key any listed value
 *    matches; every key listed must match.
 *  - Global=true: every matching machine runs it (each agent decides for itself).
 *  - Otherwise one machine, chosen by the scheduler: MachineID= pins it (node name or
 *    /etc/machine-id), MachineOf= puts it beside the named unit, Conflicts= (globs) keeps it away
 *    from matching units. Houston's [X-Houston] Instances=N asks for N machines instead of one.
 *  - A unit's `hosts` allowlist (set by rollouts for canaries and batches) narrows this further.
 */
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { entries, splitWords, type UnitFile } from "./unit-file.js";

export const MAX_INSTANCES = 1000;

export const PlacementSchema = z.object({
  global: z.boolean(),
  metadata: z.record(z.array(z.string())),
  /** MachineID=: only this machine (its node name or machine ID) */
  machineId: z.string().min(1).optional(),
  /** MachineOf=: on the machine of each named unit */
  machineOf: z.array(z.string().min(1)).optional(),
  /** Conflicts=: never beside a unit whose name matches one of these globs */
  conflicts: z.array(z.string().min(1)).optional(),
  /** [X-Houston] Instances=: this many copies, on distinct machines (default 1) */
  instances: z.number().int().min(1).max(MAX_INSTANCES).optional(),
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
  const placement: Placement = { global, metadata: { ...metadata } };
  const word = (key: string): { value: string; line: number | undefined }[] =>
    entries(unit, "X-Fleet", key).flatMap((e) => {
      const words = splitWords(e.value);
      if (words.length === 0) throw new ConfigError(source, `[X-Fleet] ${key}= is empty`, e.line);
      for (const w of words)
        if (/[\u0000-\u001f\u007f]/.test(w))
          throw new ConfigError(source, `[X-Fleet] ${key}=: control characters are not accepted`, e.line);
      return words.map((value) => ({ value, line: e.line }));
    });
  const ids = word("MachineID");
  const of = word("MachineOf");
  const conflicts = word("Conflicts");
  const instances = entries(unit, "X-Houston", "Instances");
  const scheduled = [...ids, ...of, ...conflicts, ...instances];
  if (global && scheduled.length > 0) {
    const key = ids.length ? "MachineID" : of.length ? "MachineOf" : conflicts.length ? "Conflicts" : "Instances";
    throw new ConfigError(
      source,
      `${key === "Instances" ? "[X-Houston]" : "[X-Fleet]"} ${key}= does not apply to a Global=true unit (it runs on every matching machine)`,
      scheduled[0]?.line,
    );
  }
  if (new Set(ids.map((i) => i.value)).size > 1)
    throw new ConfigError(source, "[X-Fleet] MachineID= names more than one machine", ids[1]?.line);
  if (ids[0]) placement.machineId = ids[0].value;
  if (of.length) placement.machineOf = [...new Set(of.map((o) => o.value))];
  if (conflicts.length) placement.conflicts = [...new Set(conflicts.map((c) => c.value))];
  const last = instances.at(-1);
  if (last) {
    const n = /^\d+$/.test(last.value) ? Number(last.value) : NaN;
    if (!(n >= 1 && n <= MAX_INSTANCES))
      throw new ConfigError(
        source,
        `[X-Houston] Instances=${last.value}: expected a whole number from 1 to ${MAX_INSTANCES}`,
        last.line,
      );
    if (n > 1 && placement.machineId)
      throw new ConfigError(
        source,
        "[X-Houston] Instances= above 1 cannot go with MachineID= (one machine)",
        last.line,
      );
    placement.instances = n;
  }
  return placement;
}

/** A unit every matching machine runs by itself (no scheduler). */
export function isGlobal(u: { placements: Placement[] }): boolean {
  return u.placements.every((p) => p.global);
}

/**
 * The one metadata rule (placements, fleet's MachineMetadata): every key wanted is present on the
 * node with one of its allowed values.
 */
export function metadataMatches(want: Record<string, string[]>, nodeMeta: Record<string, string>): boolean {
  return Object.entries(want).every(([key, allowed]) => {
    const have = nodeMeta[key];
    return have !== undefined && allowed.includes(have);
  });
}

export function placementMatches(placement: Placement, nodeMeta: Record<string, string>): boolean {
  return metadataMatches(placement.metadata, nodeMeta);
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
