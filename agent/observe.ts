/**
 * What this host has now, for reconcileHost: the units Houston owns with their file hash, last
 * started content and systemd state; names of units the agent is to run that exist already
 * without Houston (a file in the unit dir, or a unit systemd loads from elsewhere: vendor,
 * template, generator, runtime); each owned unit's port drop-in (ServicePort=auto); and from
 * the state database the installed archives, whether a
 * daemon reload is still owed, and the services registered for units fleet runs here.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentDeps } from "./agent.js";
import { PORT_DROP_IN } from "./ports.js";
import type { HostObservation } from "./reconcile.js";
import type { HostDesired } from "./targeting.js";

export async function observeHost(
  deps: Pick<AgentDeps, "state" | "systemd">,
  unitDir: string,
  desired: HostDesired,
  registrationsStale: boolean,
): Promise<HostObservation> {
  const owned = deps.state.units();
  const ownedNames = new Set(owned.map((u) => u.name));
  const observed = [];
  const states = await deps.systemd.unitStates(owned.map((u) => u.name));
  for (const u of owned) {
    const state = states.get(u.name) ?? { activeState: "inactive" };
    observed.push({
      name: u.name,
      stack: u.stack,
      fileHash: fileHash(unitDir, u.name),
      startedHash: u.startedHash,
      activeState: state.activeState,
      serviceId: u.serviceId,
      dropIn: readOrNull(join(unitDir, `${u.name}.d`, PORT_DROP_IN)),
    });
  }
  const foreign = new Map<string, string>();
  const unknown = new Set<string>();
  for (const u of desired.units) {
    if (u.runner !== "agent") continue; // fleet writes its own units: not ours to find clashes for
    if (ownedNames.has(u.name) || foreign.has(u.name) || unknown.has(u.name)) continue;
    if (existsSync(join(unitDir, u.name)))
      foreign.set(u.name, `unit file ${u.name} exists and was not created by Houston; not touching it`);
    else unknown.add(u.name);
  }
  // a vendor unit, a template instance, a generated or runtime unit of that name: never shadowed
  // (one call for all names; the rare unit systemd has is asked about again for where it is from)
  const known = await deps.systemd.unitStates([...unknown]);
  for (const name of unknown) {
    if (known.get(name)?.loadState === "not-found") continue;
    const source = await deps.systemd.unitSource(name);
    if (source.loadState === "not-found") continue;
    foreign.set(
      name,
      `systemd already has ${name} (${source.loadState}${source.fragmentPath ? ` from ${source.fragmentPath}` : ""}), not created by Houston; not shadowing it`,
    );
  }
  return {
    owned: observed,
    foreign,
    archives: deps.state.installedArchives(),
    registrationsStale: registrationsStale,
    reloadPending: deps.state.reloadPending(),
    fleetServices: deps.state.fleetServices(),
  };
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function fileHash(unitDir: string, name: string): string | null {
  try {
    return createHash("sha256")
      .update(readFileSync(join(unitDir, name)))
      .digest("hex");
  } catch {
    return null;
  }
}
