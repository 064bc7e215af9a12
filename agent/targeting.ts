/**
 * Which units of which stacks belong on this host (pure), as one list, each unit saying who runs
 * it: `agent` (Houston writes, starts and stops it) or `fleet` (a fleet-scheduled stack's unit
 * that fleet placed here: fleet writes, starts and stops it; the agent reports it and registers
 * its service). A global unit belongs here when one of its placements matches the node's
 * metadata; any other unit when the scheduler placed it here (placements/<stack>) and the signed
 * spec allows this host too (a placement can only choose among the machines the spec admits: see
 * shared/placement.ts and shared/schedule.ts).
 * A placement naming this host is checked against every rule this host can decide by itself
 * (placementProblem): the rollout's host allowlist, the metadata, MachineID= and Conflicts= (both
 * ways, against every unit that runs or is placed here); a unit that breaks one is not run, and
 * when the placement is for the spec's generation, the refusal (unit, host, rule) is reported in
 * the stack's errors, which fail a rollout that waits for this host.
 * The text is rendered for this host: dependencies on units of the same stack that are not
 * placed here are dropped from Requires=/After=/Wants=/BindsTo=/Requisite=/PartOf=/Before=, else
 * systemd would refuse to start a unit whose predecessor lives on another host.
 */
import { createHash } from "node:crypto";
import { isGlobal, placementMatches, unitTargetsNode } from "../shared/placement.js";
import { follows, globMatch, isFollower, type Machine, type PlacementDoc } from "../shared/schedule.js";
import type { Deployment, ServiceDecl, StackSpec, UnitRole, UnitSpec } from "../shared/spec.js";
import { fleetArchiveMetadata, fleetUnitText, isFleetStack, metadataMatches } from "../shared/fleet-mirror.js";
import { parseUnitFile, renderUnitFile, splitWords } from "../shared/unit-file.js";
import { ordinal } from "../shared/order.js";

/** who writes, starts and stops a unit on this host */
export type Runner = "agent" | "fleet";

export interface DesiredUnit {
  name: string;
  runner: Runner;
  stack: string;
  role: UnitRole;
  version: string;
  group: string | null;
  text: string;
  hash: string;
  archive?: string;
  service?: ServiceDecl;
  /** stop then start: units of the stack this one replaces where both would run (reconcile.ts) */
  replaces?: string[];
  /** those of `replaces` that were wanted on this host, so stopped here first (reported) */
  replacing?: string[];
  /** ServicePort=auto or a range: the port the agent chose for this unit here (agent/ports.ts) */
  port?: number;
  /** ServicePort=auto or a range: why no port could be chosen (the stack is blocked) */
  portProblem?: string;
  /** the rollout's window for this unit, in seconds: reported as stood once it has been active that long */
  window?: number;
}

export interface HostDesired {
  /** stack by stack (sorted), each in spec order; a stack's units have one runner */
  units: DesiredUnit[];
  /** archive digest → stack */
  archives: Map<string, string>;
  generations: Map<string, number>;
  /** what each stack's spec deploys (type, name, version, group), named in the status report */
  deployments?: Map<string, Deployment>;
  /** stack → placements of the spec's generation this host refused (unit, host, rule), for its report */
  refused: Map<string, string[]>;
}

const DEP_KEYS = new Set(["Requires", "After", "Wants", "BindsTo", "Requisite", "PartOf", "Before"]);

export function hashText(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export function desiredForHost(
  specs: StackSpec[],
  placements: ReadonlyMap<string, PlacementDoc>,
  node: string,
  nodeMeta: Record<string, string>,
  machineId?: string,
): HostDesired {
  const machine: Machine = { node, meta: nodeMeta, machineId, state: "up" };
  const units: DesiredUnit[] = [];
  const archives = new Map<string, string>();
  const generations = new Map<string, number>();
  const deployments = new Map<string, Deployment>();
  const refused = new Map<string, string[]>();
  const sorted = [...specs].sort((a, b) => ordinal(a.stack, b.stack));
  const placedHere = (spec: StackSpec, u: UnitSpec): boolean =>
    (placements.get(spec.stack)?.units[u.name] ?? []).includes(node);
  // every unit that runs or is placed here (any stack, any runner): what Conflicts= is checked against
  const here: UnitSpec[] = sorted.flatMap((spec) =>
    spec.units.filter(
      (u) =>
        !isFollower(u) &&
        (!isFleetStack(spec) && isGlobal(u) ? unitTargetsNode(u, node, nodeMeta) : placedHere(spec, u)),
    ),
  );
  for (const spec of sorted) {
    generations.set(spec.stack, spec.generation);
    deployments.set(spec.stack, spec.deployment);
    const placed = placements.get(spec.stack)?.units ?? {};
    if (isFleetStack(spec)) {
      for (const u of spec.units) {
        // files by the signed spec's rule (the file unit fleet runs is restricted the same way)
        if (u.archive && metadataMatches(fleetArchiveMetadata(u), nodeMeta)) archives.set(u.archive, spec.stack);
        if (!(placed[u.name] ?? []).includes(node)) continue;
        const text = fleetUnitText(spec.stack, u);
        units.push({ ...pick(u, spec.stack, "fleet"), text, hash: hashText(text) });
      }
      continue;
    }
    const current = placements.get(spec.stack)?.generation === spec.generation;
    const runs = spec.units.filter((u) => {
      if (isFollower(u)) return false;
      if (isGlobal(u)) return unitTargetsNode(u, node, nodeMeta);
      if (!placedHere(spec, u)) return false;
      const problem = placementProblem(u, machine, here);
      if (problem === null) return true;
      // a placement of an older generation may lag behind the spec (the scheduler rewrites it): not run, not reported
      if (current) refused.set(spec.stack, [...(refused.get(spec.stack) ?? []), refusal(u.name, node, problem)]);
      return false;
    });
    // a deployment's file archive comes with its units, a stack's socket with its service: decided
    // here, not by the scheduler, so that a global unit never starts before its files are in place
    const unitsHere = spec.units.filter(
      (u) =>
        runs.includes(u) || (isFollower(u) && unitTargetsNode(u, node, nodeMeta) && runs.some((o) => follows(u, o))),
    );
    const elsewhere = new Set(spec.units.filter((u) => !unitsHere.includes(u)).map((u) => u.name));
    for (const u of unitsHere) {
      const text = elsewhere.size ? dropDependencies(u.text, elsewhere, `${spec.stack}/${u.name}`) : u.text;
      units.push({ ...pick(u, spec.stack, "agent"), text, hash: hashText(text) });
      if (u.archive) archives.set(u.archive, spec.stack);
    }
  }
  return { units, archives, generations, deployments, refused };
}

/** How a host's refusal of a placement reads in its report (and so in a rollout's failure). */
export function refusal(unit: string, node: string, rule: string): string {
  return `placement of ${unit} on ${node} refused: ${rule}`;
}

/**
 * The first placement rule this machine can decide by itself that putting `u` here breaks, or
 * null: the rollout's host allowlist, the metadata (any of the unit's placements), MachineID=,
 * and Conflicts= both ways against `here` (the units that run or are placed on this machine).
 */
export function placementProblem(u: UnitSpec, m: Machine, here: readonly UnitSpec[]): string | null {
  if (u.hosts !== undefined && !u.hosts.includes(m.node))
    return `the rollout's host allowlist (${u.hosts.join(", ") || "none yet"}) does not include ${m.node}`;
  if (!u.placements.some((p) => placementMatches(p, m.meta))) {
    const have = Object.entries(m.meta).map(([k, v]) => `${k}=${v}`);
    const want = u.placements.map((p) => Object.entries(p.metadata).map(([k, v]) => `${k}=${v.join("|")}`));
    return `metadata ${want.map((w) => w.join(", ")).join(" or ")} does not match this host's (${have.join(", ") || "none"})`;
  }
  const id = u.placements[0]?.machineId;
  if (id !== undefined && id !== m.node && id !== m.machineId)
    return `MachineID=${id} is not this machine (${m.machineId ?? "machine id unknown"})`;
  for (const other of here) {
    if (other.name === u.name) continue;
    const mine = (u.placements[0]?.conflicts ?? []).find((g) => globMatch(g, other.name));
    if (mine) return `Conflicts=${mine}: ${other.name} runs or is placed here`;
    const theirs = (other.placements[0]?.conflicts ?? []).find((g) => globMatch(g, u.name));
    if (theirs) return `${other.name}, which runs or is placed here, has Conflicts=${theirs}`;
  }
  return null;
}

function pick(u: UnitSpec, stack: string, runner: Runner): Omit<DesiredUnit, "text" | "hash"> {
  return {
    name: u.name,
    runner,
    stack,
    role: u.role,
    version: u.version,
    group: u.group,
    archive: u.archive,
    service: u.service,
    ...(u.replaces?.length ? { replaces: u.replaces } : {}),
    ...(u.window ? { window: u.window } : {}),
  };
}

function dropDependencies(text: string, names: Set<string>, source: string): string {
  const unit = parseUnitFile(text, source);
  for (const section of unit.sections.filter((s) => s.name === "Unit")) {
    section.entries = section.entries.flatMap((e) => {
      if (!DEP_KEYS.has(e.key)) return [e];
      const kept = splitWords(e.value).filter((w) => !names.has(w));
      return kept.length ? [{ key: e.key, value: kept.join(" ") }] : [];
    });
  }
  return renderUnitFile(unit);
}
