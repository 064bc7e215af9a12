/**
 * The agent's pure core: (what this host has) + (what it should have) → ordered steps.
 * Re-derived from fresh observations on every pass, so a crash between two steps is harmless.
 *
 * Order: install archives → write unit files → deregister, stop and remove unwanted units →
 * one daemon reload (skipped when systemd loaded every added file by itself; after the report
 * when the pass only removes) → start wanted units in spec order → register services → remove
 * archives.
 * A service whose unit is (re)started is registered afresh: a check's status never carries over
 * from the process it described to the next one.
 * A unit is started once per content: a unit that failed stays failed (and reported) until its
 * content changes; Houston does not loop restarting it.
 */
import type { ServiceDecl } from "../shared/spec.js";
import type { DesiredUnit, HostDesired } from "./targeting.js";

export interface ObservedUnit {
  name: string;
  stack: string;
  /** sha256 of the unit file on disk; null when the file is missing */
  fileHash: string | null;
  startedHash: string | null;
  activeState: string;
  serviceId: string | null;
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
  /** services registered for units fleet runs here, by unit */
  fleetServices?: ReadonlyMap<string, { stack: string; serviceId: string; hash: string }>;
}

export type Step =
  | { kind: "blocked"; stack: string; name: string; reason: string }
  | { kind: "install-archive"; stack: string; sha: string }
  | { kind: "write-unit"; stack: string; name: string; text: string; hash: string }
  | { kind: "deregister-service"; stack: string; name: string; serviceId: string; fleet?: true }
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
      /**
       * set when the pass only removes units: no step of the pass needs the reload (it makes
       * systemd forget the removed files), so the agent reports first; with hundreds of units
       * loaded a reload takes a second
       */
      afterReport?: true;
    }
  | { kind: "start-unit"; stack: string; name: string; hash: string; restart: boolean }
  | {
      kind: "register-service";
      stack: string;
      name: string;
      serviceId: string;
      service: ServiceDecl;
      version: string;
      group: string | null;
      /** a unit fleet runs: recorded with its content hash, not as a unit Houston owns */
      fleet?: { hash: string };
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

const RUNNING = new Set(["active", "activating", "reloading"]);

export function reconcileHost(current: HostObservation, desired: HostDesired): Step[] {
  const owned = new Map(current.owned.map((u) => [u.name, u]));
  // wanted by the stack that owns it: another stack asking for a name does not keep it alive
  const wanted = new Set(desired.units.map((u) => `${u.stack}/${u.name}`));
  const blockedStacks = new Map<string, Step>();
  const claimedBy = new Map<string, string>();
  const block = (stack: string, name: string, reason: string): void => {
    if (!blockedStacks.has(stack)) blockedStacks.set(stack, { kind: "blocked", stack, name, reason });
  };
  for (const u of desired.units) {
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
  }
  const live = desired.units.filter((u) => !blockedStacks.has(u.stack));
  const steps: Step[] = [...blockedStacks.values()];

  for (const [sha, stack] of desired.archives) {
    if (!blockedStacks.has(stack) && !current.archives.has(sha)) steps.push({ kind: "install-archive", stack, sha });
  }
  const writes = live.filter((u) => owned.get(u.name)?.fileHash !== u.hash);
  for (const u of writes) steps.push({ kind: "write-unit", stack: u.stack, name: u.name, text: u.text, hash: u.hash });

  const unwanted = current.owned.filter((u) => !wanted.has(`${u.stack}/${u.name}`)).reverse();
  for (const u of unwanted)
    if (u.serviceId) steps.push({ kind: "deregister-service", stack: u.stack, name: u.name, serviceId: u.serviceId });
  for (const u of unwanted) steps.push({ kind: "stop-unit", stack: u.stack, name: u.name });
  for (const u of unwanted) steps.push({ kind: "remove-unit-file", stack: u.stack, name: u.name });

  const pending = current.reloadPending === true;
  const onlyAdded = !pending && unwanted.length === 0 && writes.every((u) => !owned.has(u.name));
  if (writes.length > 0)
    steps.push(onlyAdded ? { kind: "reload", added: writes.map((u) => u.name) } : { kind: "reload" });
  else if (unwanted.length > 0 || pending) steps.push({ kind: "reload", afterReport: true });

  for (const u of live) {
    const o = owned.get(u.name);
    if (o?.startedHash === u.hash) continue;
    const restart = o !== undefined && o.startedHash !== null && RUNNING.has(o.activeState);
    steps.push({ kind: "start-unit", stack: u.stack, name: u.name, hash: u.hash, restart });
  }
  const serving = (u: DesiredUnit): boolean => RUNNING.has(owned.get(u.name)?.activeState ?? "");
  for (const u of live) {
    const shared = live.some(
      (x) => x !== u && x.stack === u.stack && x.service?.port === u.service?.port && serving(x),
    );
    steps.push(...registration(u, owned.get(u.name), current.registrationsStale, shared));
  }

  steps.push(...fleetRegistrations(current, desired));

  for (const [sha, stack] of current.archives)
    if (!desired.archives.has(sha)) steps.push({ kind: "remove-archive", stack, sha });
  return steps;
}

/** Units fleet runs here: their services are registered while fleet places them here, no longer. */
function fleetRegistrations(current: HostObservation, desired: HostDesired): Step[] {
  const have = current.fleetServices ?? new Map<string, { stack: string; serviceId: string; hash: string }>();
  const steps: Step[] = [];
  const wanted = new Set<string>();
  for (const u of desired.fleet ?? []) {
    if (!u.service) continue;
    wanted.add(u.name);
    const o = have.get(u.name);
    if (o && o.hash === u.hash && o.stack === u.stack && !current.registrationsStale) continue;
    // fleet restarts a unit whose content changed: the old process's check status is not the new one's
    const resetCheck = o !== undefined && o.hash !== u.hash && o.serviceId === serviceIdFor(u.name);
    // fleet's units' states are not observed here: any other of the stack on the port may be serving
    const sharedPort = (desired.fleet ?? []).some(
      (x) => x !== u && x.stack === u.stack && x.service?.port === u.service?.port,
    );
    steps.push({
      kind: "register-service",
      stack: u.stack,
      name: u.name,
      serviceId: serviceIdFor(u.name),
      service: u.service,
      version: u.version,
      group: u.group,
      fleet: { hash: u.hash },
      ...(resetCheck ? { resetCheck: true as const } : {}),
      ...(sharedPort ? { sharedPort: true as const } : {}),
    });
  }
  for (const [name, o] of have)
    if (!wanted.has(name))
      steps.unshift({ kind: "deregister-service", stack: o.stack, name, serviceId: o.serviceId, fleet: true });
  return steps;
}

function registration(u: DesiredUnit, o: ObservedUnit | undefined, stale: boolean, sharedPort: boolean): Step[] {
  if (!u.service)
    return o?.serviceId ? [{ kind: "deregister-service", stack: u.stack, name: u.name, serviceId: o.serviceId }] : [];
  const id = serviceIdFor(u.name);
  // re-register when the unit (re)starts too: its content, and so its declaration, may have changed
  if (o?.serviceId === id && o.startedHash === u.hash && !stale) return [];
  const resetCheck = o?.serviceId === id && o.startedHash !== u.hash;
  return [
    {
      kind: "register-service",
      stack: u.stack,
      name: u.name,
      serviceId: id,
      service: u.service,
      version: u.version,
      group: u.group,
      ...(resetCheck ? { resetCheck: true as const } : {}),
      ...(sharedPort ? { sharedPort: true as const } : {}),
    },
  ];
}
