/**
 * Stacks scheduled by fleet (pure): the units fleet gets for a spec, what to change in fleet to
 * match the specs, and fleet's /state read back as placements. The I/O is agent/fleet-mirror.ts.
 *
 * Ownership: only units Houston created (recorded in KV fleet/owned, shared/stores/fleet-owned.ts)
 * are ever replaced or destroyed; a fleet unit of the same name that Houston did not create is
 * reported, never touched.
 */
import type { FleetUnit, FleetUnitState, UnitOption } from "./fleet.js";
import { sameOptions, unitOptions } from "./fleet.js";
import { MOVES_KEPT, type Move, type PlacementDoc } from "./schedule.js";
import type { StackSpec, UnitSpec } from "./spec.js";
import { renderUnitFile, type UnitFile } from "./unit-file.js";
import { isGlobal } from "./placement.js";
import { ordinal } from "./order.js";

/** fleet's MachineMetadata is matched by the one metadata rule (placement.ts) */
export { metadataMatches } from "./placement.js";

/** Where the agent listens for local requests (root only): the fleet file unit asks it for files. */
export const AGENT_SOCKET = "/run/houston/agent.sock";
/** The local request path that installs a stack's archive and answers when the files are in place. */
export const ARCHIVE_REQUEST_RE = /^\/v1\/archives\/([A-Za-z0-9][A-Za-z0-9_.-]*)\/([0-9a-f]{64})$/;

export function isFleetStack(spec: Pick<StackSpec, "scheduler">): boolean {
  return spec.scheduler === "fleet";
}

/**
 * The metadata a fleet stack's file unit (Global) is restricted to: the deployment's own when its
 * units agree on one, else none (every machine). The agent installs files by the same rule.
 */
export function fleetArchiveMetadata(u: Pick<UnitSpec, "placements">): Record<string, string[]> {
  const metas = new Set(u.placements.map((p) => JSON.stringify(p.metadata)));
  const only = u.placements[0];
  return metas.size === 1 && only ? only.metadata : {};
}

/**
 * The unit file fleet runs for a spec unit. An archive unit becomes the seed's file unit (Global,
 * restricted to the deployment's metadata) that asks the local agent to install the archive and
 * waits for it: the agent stays the only writer of files. Every other unit goes as the signed
 * spec has it, [X-Fleet] verbatim.
 */
export function fleetUnitText(stack: string, u: UnitSpec): string {
  if (u.role !== "archive" || !u.archive) return u.text;
  const meta = Object.entries(fleetArchiveMetadata(u)).flatMap(([k, vs]) =>
    vs.map((v) => ({ key: "MachineMetadata", value: `${k}=${v}` })),
  );
  const unit: UnitFile = {
    sections: [
      {
        name: "Unit",
        entries: [
          { key: "Description", value: `Houston file archive ${u.archive.slice(0, 12)} of ${stack}` },
          { key: "After", value: "houston-agent.service" },
        ],
      },
      {
        name: "Service",
        entries: [
          { key: "Type", value: "oneshot" },
          { key: "RemainAfterExit", value: "yes" },
          // the agent checks the request against the signed spec, installs and then answers
          {
            key: "ExecStart",
            value: `/usr/bin/curl --silent --show-error --fail --max-time 900 --unix-socket ${AGENT_SOCKET} -X POST http://houston-agent/v1/archives/${stack}/${u.archive}`,
          },
          { key: "Restart", value: "on-failure" },
          { key: "RestartSec", value: "2" },
        ],
      },
      { name: "X-Fleet", entries: [{ key: "Global", value: "true" }, ...meta] },
    ],
  };
  return renderUnitFile(unit);
}

export interface DesiredFleetUnit {
  name: string;
  stack: string;
  options: UnitOption[];
}

/** Every unit of the fleet-scheduled specs, as fleet gets it. */
export function desiredFleetUnits(specs: StackSpec[]): DesiredFleetUnit[] {
  return specs
    .filter(isFleetStack)
    .flatMap((s) =>
      s.units.map((u) => ({ name: u.name, stack: s.stack, options: unitOptions(fleetUnitText(s.stack, u), u.name) })),
    );
}

export type MirrorStep =
  | { kind: "create"; name: string; stack: string; options: UnitOption[] }
  | { kind: "launch"; name: string; stack: string; options: UnitOption[] }
  | { kind: "destroy"; name: string; stack: string }
  | { kind: "foreign"; name: string; stack: string; reason: string };

/**
 * What to do in fleet so that it runs exactly the desired units: create what is missing (or
 * replace ours with different options), launch ours that are not launched, destroy ours that no
 * spec wants and that is not adopted. Creates first (in spec order), destroys last.
 */
export function mirrorSteps(
  desired: DesiredFleetUnit[],
  inFleet: FleetUnit[],
  owned: ReadonlyMap<string, string>,
  adopted: ReadonlyMap<string, string> = new Map(),
): MirrorStep[] {
  const mine = new Map([...adopted, ...owned]);
  const fleet = new Map(inFleet.map((u) => [u.name, u]));
  const steps: MirrorStep[] = [];
  const wanted = new Set<string>();
  for (const d of desired) {
    wanted.add(d.name);
    const have = fleet.get(d.name);
    const ours = mine.get(d.name);
    if (have && ours === undefined) {
      steps.push({
        kind: "foreign",
        name: d.name,
        stack: d.stack,
        reason: `fleet already has a unit ${d.name} that Houston did not create; not touching it (houston adopt takes over the original Houston's units)`,
      });
    } else if (have && ours !== d.stack) {
      steps.push({
        kind: "foreign",
        name: d.name,
        stack: d.stack,
        reason: `fleet unit ${d.name} belongs to stack ${ours ?? "?"}; not taking it`,
      });
    } else if (have && adopted.has(d.name) && !owned.has(d.name)) {
      // an adopted unit of the very name: taken over in place, left running as the original had it
      // until a confirmed deploy releases it (a failed one then leaves exactly what ran)
    } else if (!have || !sameOptions(have.options ?? [], d.options)) {
      steps.push({ kind: "create", name: d.name, stack: d.stack, options: d.options });
    } else if (have.desiredState !== "launched") {
      steps.push({ kind: "launch", name: d.name, stack: d.stack, options: d.options });
    }
  }
  // an adopted unit is never destroyed while adopted, even where Houston replaced it: a failed
  // deploy returns to what ran before (only a confirmed deploy releases it, shared/stores/fleet-owned.ts)
  for (const [name, stack] of [...owned].sort(([a], [b]) => ordinal(a, b)))
    if (!wanted.has(name) && !adopted.has(name)) steps.push({ kind: "destroy", name, stack });
  return steps;
}

/**
 * fleet's /state as placements/<stack> documents, one per fleet-scheduled spec: each unit on the
 * nodes whose machine reports it (machine IDs to nodes through the agents' records). A unit fleet
 * cannot take is unplaced with the reason given (`problems`).
 */
export function placementsFromState(
  specs: StackSpec[],
  states: FleetUnitState[],
  nodeOfMachine: ReadonlyMap<string, string>,
  problems: ReadonlyMap<string, string>,
  scheduler: string,
  now: string,
  previous: ReadonlyMap<string, PlacementDoc>,
  /** nodes whose fleet machine is in the cluster now (a unit gone from another one was lost with it) */
  liveNodes: ReadonlySet<string>,
): Map<string, PlacementDoc> {
  const where = new Map<string, Set<string>>();
  for (const s of states) {
    const node = nodeOfMachine.get(s.machineID);
    if (!node) continue;
    const set = where.get(s.name) ?? new Set<string>();
    set.add(node);
    where.set(s.name, set);
  }
  const docs = new Map<string, PlacementDoc>();
  for (const spec of specs.filter(isFleetStack)) {
    const units: Record<string, string[]> = {};
    const unplaced: Record<string, string> = {};
    for (const u of spec.units) {
      const nodes = [...(where.get(u.name) ?? [])].sort();
      if (nodes.length) units[u.name] = nodes;
      const why = problems.get(u.name);
      if (why) unplaced[u.name] = why;
    }
    const prev = previous.get(spec.stack);
    // a singleton fleet moved (its machine was lost) is recorded, as the native scheduler does: first
    // gone from its machine (to nowhere), then completed where fleet started it again
    const moves: Move[] = [...(prev?.moves ?? [])];
    for (const u of spec.units.filter((x) => !isGlobal(x))) {
      const from = prev?.units[u.name]?.[0];
      const to = units[u.name]?.[0];
      if (from && !to && !liveNodes.has(from))
        moves.push({ unit: u.name, from, to: null, reason: "fleet lost its machine", at: now });
      else if (from && to && from !== to) moves.push({ unit: u.name, from, to, reason: "fleet moved it", at: now });
      else if (!from && to) {
        const i = moves.map((m) => m.unit).lastIndexOf(u.name);
        const last = moves[i];
        if (last && last.to === null) moves[i] = { ...last, to, reason: "fleet moved it", at: now };
      }
    }
    docs.set(spec.stack, {
      schema: 1,
      stack: spec.stack,
      generation: spec.generation,
      units,
      unplaced,
      moves: moves.slice(-MOVES_KEPT),
      scheduler: `fleet (mirrored by ${scheduler})`,
      updatedAt: now,
    });
  }
  return docs;
}
