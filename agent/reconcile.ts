/**
 * The agent's pure core: (what this host has) + (what it should have) → ordered steps.
 * Re-derived from fresh observations on every pass, so a crash between two steps is harmless.
 * One reconciler for every desired unit, whoever runs it: a unit the agent runs is written,
 * started, stopped and removed here; a unit fleet runs (runner "fleet") only has its service
 * registered while fleet places it here (the agent never writes, starts or stops it).
 *
 * Order: install archives (again, for a kept archive of a stack whose other archive goes) → write unit files → deregister, stop and remove unwanted units (an
 * unwanted fleet unit's service: deregistered only) → one daemon reload (skipped when systemd
 * loaded every added file by itself; before the stops when a unit is rewritten, so that a unit
 * that no longer Requires= a stopped one is not stopped with it, and the removals' reload waits) → start wanted units in spec order → register services →
 * remove archives. What must wait until the pass's report is out comes apart (`afterReport`):
 * the reload of a pass that only removes units.
 * A service whose unit is (re)started is registered afresh: a check's status never carries over
 * from the process it described to the next one.
 * A unit is started once per content: a unit that failed stays failed (and reported) until its
 * content changes; Houston does not loop restarting it.
 * Stop then start: a wanted unit that `replaces` another wanted unit of its stack (an upgrade of a
 * fixed-port service) displaces it on this host: the old one is deregistered, stopped and removed
 * before the new one starts, in the same pass (the old one stays wherever its successor is not).
 * ServicePort=auto: a unit's port drop-in (agent/ports.ts) is written with its file (and again
 * when it is missing or differs) and removed with it; a unit without a port is blocked, naming why.
 */
import type { ServiceDecl } from "../shared/spec.js";
import { servicePort, wantedDropIn } from "./ports.js";
import type { DesiredUnit, HostDesired, Runner } from "./targeting.js";

export interface ObservedUnit {
  name: string;
  stack: string;
  /** sha256 of the unit file on disk; null when the file is missing */
  fileHash: string | null;
  startedHash: string | null;
  activeState: string;
  serviceId: string | null;
  /** the port drop-in beside the unit file (ServicePort=auto), as on disk; absent or null: none */
  dropIn?: string | null;
}

/** a service the agent registered for a unit fleet runs here, with the unit content it was for */
export interface FleetService {
  stack: string;
  serviceId: string;
  hash: string;
}

export interface HostObservation {
  /** units Houston created (per its state), with what disk and systemd say now */
  owned: ObservedUnit[];
  /**
   * wanted names Houston did not create but that exist already (a file in the unit dir, or a
   * unit systemd loads from elsewhere: vendor unit, template instance, generator, runtime unit),
   * with what was found
   */
  foreign: Map<string, string>;
  /** installed archive digest → stack */
  archives: Map<string, string>;
  /** the local Consul agent may have lost registrations (after an outage): register again */
  registrationsStale: boolean;
  /** a unit file was removed since systemd's last reload (the agent stopped before it reloaded) */
  reloadPending?: boolean;
  /** services registered for units fleet runs here, by unit (fleet's units are not owned here) */
  fleetServices?: ReadonlyMap<string, FleetService>;
}

export type Step =
  | { kind: "blocked"; stack: string; name: string; reason: string }
  | { kind: "install-archive"; stack: string; sha: string }
  | {
      kind: "write-unit";
      stack: string;
      name: string;
      text: string;
      hash: string;
      /** the port drop-in to write beside it (before it: systemd may load the unit any time) */
      dropIn?: string;
      /** a port drop-in is there that the unit no longer wants */
      removeDropIn?: true;
    }
  | { kind: "deregister-service"; stack: string; name: string; serviceId: string; runner: Runner }
  | { kind: "stop-unit"; stack: string; name: string }
  | { kind: "remove-unit-file"; stack: string; name: string }
  | {
      kind: "reload";
      /**
       * set when the pass only adds unit files, under names systemd did not have (observe.ts
       * blocks any other): systemd loads a new file when first asked for it, so the reload can be
       * skipped once it has loaded each
       */
      added?: string[];
    }
  | { kind: "start-unit"; stack: string; name: string; hash: string; restart: boolean }
  | {
      kind: "register-service";
      stack: string;
      name: string;
      serviceId: string;
      service: ServiceDecl;
      /** the port registered: the declared one, or the one the agent chose (ServicePort=auto) */
      port: number;
      version: string;
      group: string | null;
      /** a unit fleet runs is recorded with its content `hash`, not as a unit Houston owns */
      runner: Runner;
      /** the unit content the registration is for */
      hash: string;
      /**
       * the service is registered already, for a process this pass replaces: Consul would carry
       * its check's status over to the new process, so the registration is dropped first
       */
      resetCheck?: true;
      /**
       * another unit of the stack serving the same port runs here (an upgrade's old version): a
       * check may be answered by either, so the agent does not look first; Consul's check decides
       */
      sharedPort?: true;
    }
  | { kind: "remove-archive"; stack: string; sha: string };

export function serviceIdFor(unit: string): string {
  return `houston:${unit}`;
}

/** A pass's steps: the loop carries out `steps`, reports, then carries out `afterReport`. */
export interface HostPlan {
  steps: Step[];
  /**
   * the reload of a pass that only removes units: no step of the pass needs it (it makes systemd
   * forget the removed files), so the agent reports first; with hundreds of units loaded a reload
   * takes a second
   */
  afterReport: Step[];
}

const RUNNING = new Set(["active", "activating", "reloading"]);

export function reconcileHost(current: HostObservation, wants: HostDesired): HostPlan {
  const desired = withoutReplaced(wants);
  const owned = new Map(current.owned.map((u) => [u.name, u]));
  const fleetServices = current.fleetServices ?? new Map<string, FleetService>();
  const ours = desired.units.filter((u) => u.runner === "agent");
  // wanted by the stack that owns it: another stack asking for a name does not keep it alive
  const wanted = new Set(ours.map((u) => `${u.stack}/${u.name}`));
  const blockedStacks = new Map<string, Step>();
  const claimedBy = new Map<string, string>();
  const block = (stack: string, name: string, reason: string): void => {
    if (!blockedStacks.has(stack)) blockedStacks.set(stack, { kind: "blocked", stack, name, reason });
  };
  for (const u of ours) {
    const o = owned.get(u.name);
    const first = claimedBy.get(u.name);
    if (first === undefined) claimedBy.set(u.name, u.stack);
    if (o && o.stack !== u.stack)
      block(u.stack, u.name, `unit ${u.name} is owned by stack ${o.stack}; not taking it over`);
    else if (first !== undefined && first !== u.stack)
      block(u.stack, u.name, `unit ${u.name} is wanted by stack ${first} too; not taking it`);
    else if (!o) {
      const found = current.foreign.get(u.name);
      if (found !== undefined) block(u.stack, u.name, found);
    }
    if (u.service?.portRange && u.port === undefined)
      block(u.stack, u.name, u.portProblem ?? `no port chosen for ${u.name} (ServicePort=auto)`);
  }
  // fleet's units are never blocked here: the agent writes none of them
  const live = desired.units.filter((u) => !blockedStacks.has(u.stack));
  const liveOurs = live.filter((u) => u.runner === "agent");
  const steps: Step[] = [...blockedStacks.values()];
  const afterReport: Step[] = [];

  // an archive that goes removes the files it owns, which include the paths a kept archive of its
  // stack wrote before it (a failed deploy's restore: the same files, other content): the kept one
  // is written again first, so it owns them again and they hold its content
  const leaving = new Set([...current.archives].filter(([sha]) => !desired.archives.has(sha)).map(([, st]) => st));
  for (const [sha, stack] of desired.archives) {
    if (!blockedStacks.has(stack) && (!current.archives.has(sha) || leaving.has(stack)))
      steps.push({ kind: "install-archive", stack, sha });
  }
  const writes = liveOurs.filter((u) => {
    const o = owned.get(u.name);
    return o?.fileHash !== u.hash || (o.dropIn ?? null) !== wantedDropIn(u);
  });
  for (const u of writes) {
    const dropIn = wantedDropIn(u);
    const had = owned.get(u.name)?.dropIn ?? null;
    steps.push({
      kind: "write-unit",
      stack: u.stack,
      name: u.name,
      text: u.text,
      hash: u.hash,
      ...(dropIn !== null ? { dropIn } : had !== null ? { removeDropIn: true as const } : {}),
    });
  }

  const unwanted = current.owned.filter((u) => !wanted.has(`${u.stack}/${u.name}`)).reverse();
  // a rewritten unit may no longer Requires= a unit that goes (a restore: the failed deploy's file
  // unit): systemd must see the new text before that stop, or the stop takes the unit along
  const reloadFirst = unwanted.length > 0 && writes.some((u) => owned.has(u.name));
  if (reloadFirst) steps.push({ kind: "reload" });
  const placedByFleet = new Set(desired.units.filter((u) => u.runner === "fleet").map((u) => u.name));
  for (const [name, o] of fleetServices)
    if (!placedByFleet.has(name))
      steps.push({ kind: "deregister-service", stack: o.stack, name, serviceId: o.serviceId, runner: "fleet" });
  for (const u of unwanted)
    if (u.serviceId)
      steps.push({ kind: "deregister-service", stack: u.stack, name: u.name, serviceId: u.serviceId, runner: "agent" });
  for (const u of unwanted) steps.push({ kind: "stop-unit", stack: u.stack, name: u.name });
  for (const u of unwanted) steps.push({ kind: "remove-unit-file", stack: u.stack, name: u.name });

  const pending = current.reloadPending === true;
  const onlyAdded = !pending && unwanted.length === 0 && writes.every((u) => !owned.has(u.name));
  if (writes.length > 0 && !reloadFirst)
    steps.push(onlyAdded ? { kind: "reload", added: writes.map((u) => u.name) } : { kind: "reload" });
  else if (unwanted.length > 0 || pending) afterReport.push({ kind: "reload" });

  for (const u of liveOurs) {
    const o = owned.get(u.name);
    if (o?.startedHash === u.hash) continue;
    const restart = o !== undefined && o.startedHash !== null && RUNNING.has(o.activeState);
    steps.push({ kind: "start-unit", stack: u.stack, name: u.name, hash: u.hash, restart });
  }
  // fleet's units' states are not observed here: any other of the stack on the port may be serving
  const serving = (u: DesiredUnit): boolean =>
    u.runner === "fleet" || RUNNING.has(owned.get(u.name)?.activeState ?? "");
  const registered = (u: DesiredUnit): Registered | undefined => {
    if (u.runner === "fleet") return fleetServices.get(u.name);
    const o = owned.get(u.name);
    return o && { stack: o.stack, serviceId: o.serviceId, hash: o.startedHash };
  };
  for (const u of live) {
    const shared = live.some(
      (x) => x !== u && x.stack === u.stack && x.service && servicePort(x) === servicePort(u) && serving(x),
    );
    steps.push(...registration(u, registered(u), current.registrationsStale, shared));
  }

  for (const [sha, stack] of current.archives)
    if (!desired.archives.has(sha)) steps.push({ kind: "remove-archive", stack, sha });
  return { steps, afterReport };
}

/**
 * The desired units without those a unit of the same stack run by the agent replaces here (stop
 * then start): they become unwanted, so their stop comes before the replacement's start. fleet
 * starts its units itself: it never replaces (controller/scheduler/unit-rules.ts).
 */
export function withoutReplaced(desired: HostDesired): HostDesired {
  const replaced = new Set(
    desired.units.filter((u) => u.runner === "agent").flatMap((u) => (u.replaces ?? []).map((r) => `${u.stack}/${r}`)),
  );
  if (replaced.size === 0) return desired;
  const here = new Set(desired.units.map((u) => `${u.stack}/${u.name}`));
  const units = desired.units
    .filter((u) => !replaced.has(`${u.stack}/${u.name}`))
    .map((u) => {
      const replacing = u.runner === "agent" ? (u.replaces ?? []).filter((r) => here.has(`${u.stack}/${r}`)) : [];
      return replacing.length ? { ...u, replacing } : u;
    });
  return { ...desired, units };
}

/** what is registered for a unit now: the service, and the unit content it was registered for */
interface Registered {
  stack: string;
  serviceId: string | null;
  /** the unit agent runs: the content last started; a unit fleet runs: the content fleet was given */
  hash: string | null;
}

function registration(u: DesiredUnit, r: Registered | undefined, stale: boolean, sharedPort: boolean): Step[] {
  if (!u.service)
    return r?.serviceId
      ? [{ kind: "deregister-service", stack: u.stack, name: u.name, serviceId: r.serviceId, runner: u.runner }]
      : [];
  const port = servicePort(u);
  // a port the agent did not choose: the unit is blocked (or, run by fleet, refused with its spec)
  if (port === undefined) return [];
  const id = serviceIdFor(u.name);
  // re-register when the unit (re)starts too: its content, and so its declaration, may have changed
  if (r?.serviceId === id && r.stack === u.stack && r.hash === u.hash && !stale) return [];
  // the unit is (re)started with other content (by the agent, or by fleet): a new process
  const resetCheck = r?.serviceId === id && r.hash !== u.hash;
  return [
    {
      kind: "register-service",
      stack: u.stack,
      name: u.name,
      serviceId: id,
      service: u.service,
      port,
      version: u.version,
      group: u.group,
      runner: u.runner,
      hash: u.hash,
      ...(resetCheck ? { resetCheck: true as const } : {}),
      ...(sharedPort ? { sharedPort: true as const } : {}),
    },
  ];
}
