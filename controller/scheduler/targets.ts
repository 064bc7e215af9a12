/**
 * Where units go, seen from the controller (pure): the hosts as the controller sees them and
 * which of them a unit targets (the agents' own rule, over their metadata); a preview of what the
 * scheduler will decide (the same shared/schedule.ts over the same observations); and the targets
 * read back from the placements it wrote. Global units go to every matching host; the rest where
 * placed.
 */
import { isGlobal, unitTargetsNode } from "../../shared/placement.js";
import { HoustonError } from "../../shared/errors.js";
import { schedule, type Machine, type PlacementDoc } from "../../shared/schedule.js";
import { isFleetStack } from "../../shared/fleet-mirror.js";
import { SCHEMA_VERSION, type StackSpec, type UnitSpec } from "../../shared/spec.js";

/** A unit no host can take (refused when planning, before anything is written). */
export class UnplaceableUnitError extends HoustonError {}

export interface HostView {
  node: string;
  meta: Record<string, string>;
  /** /etc/machine-id, when the agent reported it ([X-Fleet] MachineID=) */
  machineId?: string | undefined;
  /** houston-agent's Consul check: passing, warning, critical, or missing */
  agent: string;
}

export function hostsForUnit(unit: Pick<UnitSpec, "placements" | "hosts">, hosts: HostView[]): string[] {
  return hosts
    .filter((h) => unitTargetsNode(unit, h.node, h.meta))
    .map((h) => h.node)
    .sort();
}

export interface UnitTarget {
  name: string;
  hosts: string[];
}

/** What the scheduler sees besides the hosts: every live spec and the placements in force. */
export interface PlacementView {
  specs: StackSpec[];
  placements: ReadonlyMap<string, PlacementDoc>;
}

export const NO_PLACEMENTS: PlacementView = { specs: [], placements: new Map() };

function machinesOf(hosts: HostView[]): Machine[] {
  return hosts.map((h) => ({
    node: h.node,
    meta: h.meta,
    machineId: h.machineId,
    state: h.agent === "passing" ? "up" : "suspect",
    why: `houston-agent on ${h.node} is ${h.agent}`,
  }));
}

/**
 * Each unit and the hosts it would run on if these units joined their stack now (the live spec's
 * other units stay); a unit no host can take is an error now, not a wait.
 */
export function previewTargets(units: UnitSpec[], hosts: HostView[], view: PlacementView): UnitTarget[] {
  const stack = units[0]?.stack;
  const names = new Set(units.map((u) => u.name));
  const live = view.specs.find((s) => s.stack === stack);
  const specs = view.specs.filter((s) => s.stack !== stack);
  if (stack !== undefined)
    specs.push({
      ...(live ?? {
        schema: SCHEMA_VERSION,
        stack,
        generation: 1,
        environment: "",
        deployment: { type: "service", name: stack, version: null, group: null },
        createdAt: "",
      }),
      units: [...(live?.units ?? []).filter((u) => !names.has(u.name)), ...units],
    });
  const docs = schedule({
    specs,
    machines: machinesOf(hosts),
    previous: view.placements,
    scheduler: "preview",
    now: "",
  });
  const doc = stack === undefined ? undefined : docs.get(stack);
  return units.map((u) => {
    if (isGlobal(u)) {
      const on = hostsForUnit(u, hosts);
      if (on.length === 0) throw new UnplaceableUnitError(`${u.name} targets no host: ${globalWants(u, hosts)}`);
      return { name: u.name, hosts: on };
    }
    const why = doc?.unplaced[u.name];
    if (why) throw new UnplaceableUnitError(`${u.name} cannot be placed: ${why}`);
    return { name: u.name, hosts: doc?.units[u.name] ?? [] };
  });
}

function globalWants(u: UnitSpec, hosts: HostView[]): string {
  const where = u.placements
    .map((p) =>
      Object.keys(p.metadata).length
        ? Object.entries(p.metadata)
            .map(([k, v]) => `${k}=${v.join("|")}`)
            .join(",")
        : "any host",
    )
    .join(" or ");
  const known = hosts.map(
    (h) =>
      `${h.node} (${
        Object.entries(h.meta)
          .map(([k, v]) => `${k}=${v}`)
          .join(",") || "no metadata"
      })`,
  );
  return `it wants ${where}; hosts: ${known.join(", ") || "none"}`;
}

/**
 * Where a live spec's units are, by the backend that wrote it: the placements document (for a
 * fleet stack, fleet's /state is the truth for global units too).
 */
export function specTargets(
  spec: StackSpec,
  doc: PlacementDoc | undefined,
  hosts: HostView[],
): { targets: UnitTarget[]; unplaced: { unit: string; reason: string }[] } {
  return placedTargets(spec.units, doc, hosts, isFleetStack(spec));
}

/** The targets of these units in the placements the scheduler wrote, and the units it could not place. */
export function placedTargets(
  units: UnitSpec[],
  doc: PlacementDoc | undefined,
  hosts: HostView[],
  /** where the document says, global units too (fleet's /state is the truth for a fleet stack) */
  globalFromDoc = false,
): { targets: UnitTarget[]; unplaced: { unit: string; reason: string }[] } {
  const unplaced: { unit: string; reason: string }[] = [];
  const targets = units.map((u) => {
    if (isGlobal(u) && !(globalFromDoc && doc)) return { name: u.name, hosts: hostsForUnit(u, hosts) };
    const why = doc?.unplaced[u.name];
    if (why) unplaced.push({ unit: u.name, reason: why });
    return { name: u.name, hosts: [...(doc?.units[u.name] ?? [])].sort() };
  });
  return { targets, unplaced };
}
