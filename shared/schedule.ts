/**
 * The scheduler's decision (pure): from the stack specs, the machines and the placements in force
 * → the placements of every stack, with fleet v1.0's engine semantics:
 *  - a non-global unit runs on one machine (or [X-Houston] Instances=N distinct ones) among those
 *    whose metadata matches, respecting MachineID=, MachineOf=, Conflicts= (both ways);
 *  - least-loaded first (fewest placed units), ties broken by node name;
 *  - stable: a placed unit stays where it is while its machine is not lost and still qualifies;
 *    a new version prefers the machine of the version it replaces;
 *  - a lost machine's units move, and the move is recorded with its reason;
 *  - a unit that cannot be placed gets a reason naming what no machine satisfies.
 * Global units are not placed: every matching machine runs them. A deployment's file archive goes
 * where its units go, a stack's socket where its service goes, and a service's unit with no
 * placement of its own (`together`) where the service goes (like a Nomad task group). The agent holding the scheduler
 * role (agent/scheduler-role.ts) writes the result to placements/<stack>.
 */
import { z } from "zod";
import { isGlobal, placementMatches, type Placement } from "./placement.js";
import type { StackSpec, UnitSpec } from "./spec.js";
import { ordinal } from "./order.js";

export const MoveSchema = z.object({
  unit: z.string(),
  from: z.string(),
  /** null: nowhere to go (see unplaced) */
  to: z.string().nullable(),
  reason: z.string(),
  at: z.string(),
});
export type Move = z.infer<typeof MoveSchema>;

export const PlacementDocSchema = z.object({
  schema: z.literal(1),
  stack: z.string(),
  /** the spec generation these placements are for */
  generation: z.number().int().min(1),
  /** non-global unit → the machines that run it */
  units: z.record(z.array(z.string())),
  /** unit → why no machine (or too few) can take it */
  unplaced: z.record(z.string()),
  /** the latest moves of this stack's units, oldest first */
  moves: z.array(MoveSchema),
  /** the node whose agent held the scheduler role */
  scheduler: z.string(),
  updatedAt: z.string(),
  /** why placement is stuck, e.g. fleet unreachable (fleet-scheduled stacks) */
  note: z.string().optional(),
});
export type PlacementDoc = z.infer<typeof PlacementDocSchema>;

export const MOVES_KEPT = 10;

/** The value of scheduler/leader: which agent holds the role, since when. */
export const LeaderRecordSchema = z.object({ node: z.string(), since: z.string() });
export type LeaderRecord = z.infer<typeof LeaderRecordSchema>;

export interface Machine {
  node: string;
  meta: Record<string, string>;
  machineId?: string | undefined;
  /** up: takes units; suspect: keeps its units, takes no new ones; lost: its units move away */
  state: "up" | "suspect" | "lost";
  /** why the machine is suspect or lost (for moves and messages) */
  why?: string;
}

export interface ObservedMachine {
  node: string;
  meta: Record<string, string>;
  machineId?: string | undefined;
  /** the agent's Consul check: passing, warning, critical, or missing */
  agent: string;
}

/**
 * A machine is lost once its agent has been unwell for `graceMs` (fleet's agent_ttl), counted
 * from `unwellSince` (the scheduler's own observation); unwell but within grace it is suspect.
 */
export function machineStates(
  observed: ObservedMachine[],
  unwellSince: ReadonlyMap<string, number>,
  now: number,
  graceMs: number,
): Machine[] {
  return observed.map((o) => {
    const base = { node: o.node, meta: o.meta, machineId: o.machineId };
    if (o.agent === "passing") return { ...base, state: "up" as const };
    const since = unwellSince.get(o.node) ?? now;
    const secs = Math.round((now - since) / 1000);
    const lost = now - since >= graceMs;
    return {
      ...base,
      state: lost ? ("lost" as const) : ("suspect" as const),
      why: `houston-agent on ${o.node} ${o.agent} for ${secs}s${lost ? ` (grace ${Math.round(graceMs / 1000)}s)` : ""}`,
    };
  });
}

/** fleet's globs (path.Match): `*`, `?` and `[...]` classes. */
export function globMatch(pattern: string, name: string): boolean {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? "";
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = pattern
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/\]]/g, "\\$&");
  }
  try {
    return new RegExp(`^${re}$`).test(name);
  } catch {
    return false;
  }
}

/**
 * Units that go where others go: a deployment's archive, a stack's socket and its guard, a
 * service's unit with no placement of its own (`together`).
 */
export function isFollower(u: Pick<UnitSpec, "role" | "together">): boolean {
  return u.role === "archive" || u.role === "socket" || u.role === "socket-guard" || u.together === true;
}

/**
 * Whether follower `u` goes where `o` runs: an archive with its deployment's units (same group),
 * a socket and a `together` unit with their service. One rule for the scheduler and for each
 * agent (agent/targeting.ts).
 */
export function follows(
  u: Pick<UnitSpec, "role" | "group" | "together">,
  o: Pick<UnitSpec, "role" | "group" | "together">,
): boolean {
  return !isFollower(o) && o.group === u.group && (u.role === "archive" || o.role === "service");
}

type Kind = "placed" | "global" | "follower";

function kindOf(u: UnitSpec): Kind {
  if (isGlobal(u)) return "global";
  if (isFollower(u)) return "follower";
  return "placed";
}

/** Placement directives of a unit (one placement per unit outside archives). */
function directives(u: UnitSpec): Placement {
  return u.placements[0] ?? { global: false, metadata: {} };
}

/** The machine's metadata, MachineID and the rollout's allowlist admit the unit (nothing about other units). */
export function admits(u: UnitSpec, m: Machine): boolean {
  if (u.hosts !== undefined && !u.hosts.includes(m.node)) return false;
  if (!u.placements.some((p) => placementMatches(p, m.meta))) return false;
  const id = directives(u).machineId;
  return id === undefined || id === m.node || id === m.machineId;
}

/** What a unit asks of its machine, as fleet users write it: "role=db, Conflicts=db@*". */
export function describeWants(u: UnitSpec): string {
  const p = directives(u);
  const parts = [
    ...Object.entries(p.metadata).map(([k, v]) => `${k}=${v.join("|")}`),
    ...(p.machineId ? [`MachineID=${p.machineId}`] : []),
    ...(p.machineOf ?? []).map((x) => `MachineOf=${x}`),
    ...(p.conflicts ?? []).map((x) => `Conflicts=${x}`),
    ...((p.instances ?? 1) > 1 ? [`Instances=${p.instances}`] : []),
    ...(u.hosts ? [`rollout hosts ${u.hosts.join(",") || "none yet"}`] : []),
  ];
  return parts.join(", ") || "any machine";
}

interface Item {
  stack: string;
  unit: UnitSpec;
  want: number;
  hosts: string[];
}

export interface ScheduleInput {
  specs: StackSpec[];
  machines: Machine[];
  /** placements in force, by stack */
  previous: ReadonlyMap<string, PlacementDoc>;
  /** the node writing the result, and when */
  scheduler: string;
  now: string;
}

/** Every stack's placements. Deterministic: same input, same output. */
export function schedule(input: ScheduleInput): Map<string, PlacementDoc> {
  const machines = [...input.machines].sort((a, b) => ordinal(a.node, b.node));
  const byNode = new Map(machines.map((m) => [m.node, m]));
  const specs = [...input.specs].sort((a, b) => ordinal(a.stack, b.stack));
  /** node → names of units on it (placed and global), for load and conflicts */
  const onNode = new Map<string, Set<string>>(machines.map((m) => [m.node, new Set<string>()]));
  const load = new Map<string, number>(machines.map((m) => [m.node, 0]));
  const conflictsOf = new Map<string, string[]>();
  const items: Item[] = [];
  const globals: { unit: UnitSpec; hosts: string[] }[] = [];
  const moves = new Map<string, Move[]>(specs.map((s) => [s.stack, [...(input.previous.get(s.stack)?.moves ?? [])]]));
  const unplaced = new Map<string, Record<string, string>>(specs.map((s) => [s.stack, {}]));

  for (const spec of specs) {
    for (const u of spec.units) {
      conflictsOf.set(u.name, directives(u).conflicts ?? []);
      const kind = kindOf(u);
      if (kind === "global") {
        const hosts = machines.filter((m) => m.state !== "lost" && admits(u, m)).map((m) => m.node);
        for (const h of hosts) onNode.get(h)?.add(u.name);
        globals.push({ unit: u, hosts });
      } else if (kind === "placed") {
        items.push({ stack: spec.stack, unit: u, want: directives(u).instances ?? 1, hosts: [] });
      }
    }
  }

  const conflicts = (u: UnitSpec, node: string): string | null => {
    for (const other of onNode.get(node) ?? []) {
      if (other === u.name) continue;
      const mine = (conflictsOf.get(u.name) ?? []).find((g) => globMatch(g, other));
      if (mine) return `${other} (Conflicts=${mine})`;
      const theirs = (conflictsOf.get(other) ?? []).find((g) => globMatch(g, u.name));
      if (theirs) return `${other} (its Conflicts=${theirs})`;
    }
    return null;
  };
  const put = (item: Item, node: string): void => {
    item.hosts.push(node);
    onNode.get(node)?.add(item.unit.name);
    load.set(node, (load.get(node) ?? 0) + 1);
  };
  const hostsOf = (name: string): string[] | null => {
    const placed = items.find((i) => i.unit.name === name);
    if (placed) return placed.hosts;
    const global = globals.find((g) => g.unit.name === name);
    if (global) return global.hosts;
    // MachineOf= a unit that goes with its service: where the service goes
    const spec = specs.find((s) => s.units.some((u) => u.name === name && u.together));
    const u = spec?.units.find((x) => x.name === name);
    if (!spec || !u) return null;
    const leaders = spec.units.filter((o) => follows(u, o)).map((o) => hostsOf(o.name) ?? []);
    return [...new Set(leaders.flat())];
  };

  // 1. what stays: previous placements on machines that are not lost and still qualify
  const newMoves: { stack: string; move: Move }[] = [];
  for (const item of items) {
    const before = input.previous.get(item.stack)?.units[item.unit.name] ?? [];
    for (const node of before) {
      const m = byNode.get(node);
      const gone = !m
        ? `${node} left the cluster`
        : m.state === "lost"
          ? (m.why ?? `${node} was lost`)
          : !admits(item.unit, m)
            ? `${node} no longer satisfies ${describeWants(item.unit)}`
            : null;
      if (gone === null) {
        if (item.hosts.length < wanted(item, machines) && !conflicts(item.unit, node)) put(item, node);
      } else if (item.unit.hosts === undefined) {
        newMoves.push({
          stack: item.stack,
          move: { unit: item.unit.name, from: node, to: null, reason: gone, at: input.now },
        });
      }
    }
  }

  // 2. what is new or must move; a MachineOf= unit after the units it names (a cycle: as listed)
  let pending = items.filter((i) => i.hosts.length < wanted(i, machines));
  while (pending.length > 0) {
    const names = new Set(pending.map((p) => p.unit.name));
    const ready = pending.filter(
      (i) => !(directives(i.unit).machineOf ?? []).some((n) => names.has(n) && n !== i.unit.name),
    );
    for (const item of ready.length ? ready : pending) placeItem(item);
    pending = pending.filter((i) => !(ready.length ? ready : pending).includes(i));
  }
  for (const { stack, move } of newMoves) {
    const item = items.find((i) => i.stack === stack && i.unit.name === move.unit);
    moves.get(stack)?.push({ ...move, to: item?.hosts.find((h) => h !== move.from) ?? null });
  }

  function placeItem(item: Item): void {
    const u = item.unit;
    const of = directives(u).machineOf ?? [];
    const want = wanted(item, machines);
    const prefer = predecessorHosts(u, items);
    const reasons = new Map<string, string>();
    const candidates = machines.filter((m) => {
      if (item.hosts.includes(m.node)) return false;
      if (m.state !== "up") return (reasons.set(m.node, m.why ?? m.state), false);
      if (!admits(u, m)) return (reasons.set(m.node, "does not match"), false);
      for (const name of of) {
        const on = hostsOf(name);
        if (!on?.includes(m.node))
          return (reasons.set(m.node, on ? `does not run ${name}` : `(${name} is not scheduled)`), false);
      }
      return true;
    });
    while (item.hosts.length < want) {
      const free = candidates.filter((m) => !item.hosts.includes(m.node) && !conflicts(u, m.node));
      for (const m of candidates) {
        const c = item.hosts.includes(m.node) ? null : conflicts(u, m.node);
        if (c) reasons.set(m.node, `runs ${c}`);
      }
      const pick = free.sort(
        (a, b) =>
          Number(prefer.includes(b.node)) - Number(prefer.includes(a.node)) ||
          (load.get(a.node) ?? 0) - (load.get(b.node) ?? 0) ||
          ordinal(a.node, b.node),
      )[0];
      if (!pick) break;
      put(item, pick.node);
    }
    if (item.hosts.length < want && u.hosts === undefined) {
      const why = [...reasons].map(([n, r]) => `${n} ${r}`).join("; ");
      const count = want > 1 ? ` for ${want - item.hosts.length} of ${want} instances` : "";
      const record = unplaced.get(item.stack);
      if (record)
        record[u.name] =
          `no machine satisfies ${describeWants(u)}${count} (${why || (machines.length ? "no candidates" : "no machines")})`;
    }
  }

  // 3. archives go where their deployment's units go; sockets and `together` units where their service goes
  const result = new Map<string, PlacementDoc>();
  for (const spec of specs) {
    const units: Record<string, string[]> = {};
    const where = (u: UnitSpec): string[] =>
      items.find((i) => i.unit === u)?.hosts ?? globals.find((g) => g.unit === u)?.hosts ?? [];
    for (const item of items.filter((i) => i.stack === spec.stack)) units[item.unit.name] = [...item.hosts].sort();
    for (const u of spec.units) {
      if (kindOf(u) !== "follower") continue;
      const hosts = new Set(spec.units.filter((o) => follows(u, o)).flatMap(where));
      units[u.name] = machines.filter((m) => hosts.has(m.node) && admits(u, m)).map((m) => m.node);
    }
    result.set(spec.stack, {
      schema: 1,
      stack: spec.stack,
      generation: spec.generation,
      units,
      unplaced: unplaced.get(spec.stack) ?? {},
      moves: (moves.get(spec.stack) ?? []).slice(-MOVES_KEPT),
      scheduler: input.scheduler,
      updatedAt: input.now,
    });
  }
  return result;
}

/** Instances wanted; a rollout's allowlist caps them at the machines it allows. */
function wanted(item: Item, machines: Machine[]): number {
  if (item.unit.hosts === undefined) return item.want;
  return Math.min(item.want, machines.filter((m) => admits(item.unit, m)).length);
}

/** The machines of the version a new unit replaces: same stack, component and group, another name. */
function predecessorHosts(u: UnitSpec, items: Item[]): string[] {
  return items
    .filter(
      (i) =>
        i.unit.stack === u.stack &&
        i.unit.component === u.component &&
        i.unit.group === u.group &&
        i.unit.role === u.role &&
        i.unit.name !== u.name,
    )
    .flatMap((i) => i.hosts);
}

/** Two placement documents say the same (ignoring when and by whom they were written). */
export function samePlacements(a: PlacementDoc | undefined, b: PlacementDoc): boolean {
  if (!a) return false;
  const strip = (d: PlacementDoc): string =>
    JSON.stringify({ g: d.generation, u: sortKeys(d.units), x: sortKeys(d.unplaced), m: d.moves, n: d.note ?? null });
  return strip(a) === strip(b);
}

function sortKeys<T>(r: Record<string, T>): [string, T][] {
  return Object.entries(r).sort(([a], [b]) => ordinal(a, b));
}
