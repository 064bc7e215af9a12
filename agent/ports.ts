/**
 * Each version's own port ([X-Houston] ServicePort=auto or a range): the agent chooses, per unit on
 * this host, a free TCP port of the unit's range, keeps the choice in its state (agent/state.ts)
 * for as long as it owns the unit, so that a restart of the agent never moves a running service,
 * and never hands one port to two units it holds. The unit gets it as HOUSTON_PORT through a
 * drop-in beside its file (`<unit>.d/houston-port.conf`): the signed unit text stays as signed.
 * `portCandidates` and `dropInText` are pure; `assignPorts` asks the state and probes by binding.
 */
import { createHash } from "node:crypto";
import { createServer } from "node:net";
import type { AgentState } from "./state.js";
import type { DesiredUnit, HostDesired } from "./targeting.js";

/** the drop-in's file name, in the unit's `<unit>.d` directory */
export const PORT_DROP_IN = "houston-port.conf";

export interface PortRange {
  from: number;
  to: number;
}

/**
 * The ports of `range` to try for `unit`, in order: from a place that depends on the unit's name
 * (two units chosen at once start apart, and the same unit starts at the same place on every
 * host), round the range once, skipping `taken` (the ports the agent holds for other units, and
 * fixed ports declared here).
 */
export function* portCandidates(range: PortRange, unit: string, taken: ReadonlySet<number>): Generator<number> {
  const size = range.to - range.from + 1;
  const start = createHash("sha256").update(unit).digest().readUInt32BE(0) % size;
  for (let i = 0; i < size; i++) {
    const port = range.from + ((start + i) % size);
    if (!taken.has(port)) yield port;
  }
}

/** The drop-in that hands `unit` its port. */
export function dropInText(unit: string, port: number): string {
  return `# Written by houston-agent: the port of ${unit} on this host ([X-Houston] ServicePort=auto or a range)\n[Service]\nEnvironment=HOUSTON_PORT=${port}\n`;
}

/** The drop-in a desired unit needs: its port's, or null (no port chosen by the agent). */
export function wantedDropIn(u: DesiredUnit): string | null {
  return u.runner === "agent" && u.service?.portRange && u.port !== undefined ? dropInText(u.name, u.port) : null;
}

/** The port a unit's service is registered with: the fixed one, or the one the agent chose. */
export function servicePort(u: DesiredUnit): number | undefined {
  return u.service?.port ?? u.port;
}

/** Whether nothing listens on TCP `port` here: a listen on every address (IPv6 and IPv4) succeeds. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The desired units with their ports: those the agent holds already, and for a unit without one
 * the first free candidate (recorded before it is used). A unit whose range has no free port gets
 * `portProblem` instead (reconcile.ts blocks its stack, naming it). Ports of units neither wanted
 * here nor owned any more are released; an owned unit keeps its port until it is removed.
 */
export async function assignPorts(
  desired: HostDesired,
  state: Pick<AgentState, "ports" | "setPort" | "releasePort" | "units">,
  isFree: (port: number) => Promise<boolean> = portIsFree,
): Promise<HostDesired> {
  const dynamic = desired.units.some((u) => u.runner === "agent" && u.service?.portRange);
  const held = state.ports();
  if (!dynamic && held.size === 0) return desired;
  const owned = new Set(state.units().map((u) => u.name));
  const wanted = new Set(desired.units.map((u) => u.name));
  for (const unit of [...held.keys()])
    if (!wanted.has(unit) && !owned.has(unit)) {
      state.releasePort(unit);
      held.delete(unit);
    }
  const taken = new Set([
    ...held.values(),
    ...desired.units.flatMap((u) => (u.service?.port !== undefined ? [u.service.port] : [])),
  ]);
  const units: DesiredUnit[] = [];
  for (const u of desired.units) {
    const range = u.runner === "agent" ? u.service?.portRange : undefined;
    if (!range) {
      units.push(u);
      continue;
    }
    let port = held.get(u.name);
    if (port !== undefined && (port < range.from || port > range.to)) {
      state.releasePort(u.name);
      taken.delete(port);
      port = undefined;
    }
    if (port === undefined) {
      for (const candidate of portCandidates(range, u.name, taken))
        if (await isFree(candidate)) {
          port = candidate;
          break;
        }
      if (port === undefined) {
        const problem = `no free port in ${range.from}-${range.to} for ${u.name} (${taken.size} held by Houston's units here, the rest in use)`;
        units.push({ ...u, portProblem: problem });
        continue;
      }
      state.setPort(u.name, port);
      taken.add(port);
    }
    units.push({ ...u, port });
  }
  return { ...desired, units };
}
