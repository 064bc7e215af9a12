/**
 * How a new version of a unit takes over from the old one (pure), decided per unit by the planner
 * and said by `houston plan`:
 *  - socket: the service has [X-Houston] Socket=; old and new share the stack's socket (zero downtime);
 *  - replace: [X-Houston] Upgrade=replace, or a fixed ServicePort= without Socket= (two versions
 *    would fight over the port): on each host of a batch the old version is stopped, then the new
 *    one started; batches are one host at a time unless --canary/--max-parallel say otherwise, so
 *    the other hosts keep serving;
 *  - dynamic-port: ServicePort=auto or a range: each version gets its own port on each host
 *    (chosen by the agent, agent/ports.ts), so old and new run side by side and clients find the
 *    new one through Consul; the old one is removed after confirmation;
 *  - side-by-side: Upgrade=side-by-side, or no port declared: the new version starts beside the
 *    old, which is removed after confirmation.
 * A backend that cannot stop then start (fleet starts the units itself) says why in its unit rules:
 * an explicit Upgrade=replace is then refused, and a fixed port stays side by side with a warning;
 * a backend that cannot hand a unit its port (fleet) refuses ServicePort=auto.
 */
import { ConfigError } from "../../shared/errors.js";
import type { UnitSpec } from "../../shared/spec.js";
import { entries, type UnitFile } from "../../shared/unit-file.js";

export type StrategyKind = "socket" | "replace" | "dynamic-port" | "side-by-side";

export interface UpgradeStrategy {
  kind: StrategyKind;
  /** why, as `plan` prints it */
  reason: string;
  /** something the user should know (a fixed port the backend cannot stop then start) */
  warning: string | null;
}

const UPGRADE_VALUES = ["replace", "side-by-side"] as const;
type UpgradeValue = (typeof UPGRADE_VALUES)[number];

/** [X-Houston] Upgrade= of a unit (the last one counts), checked: a wrong value names source:line. */
export function upgradeOf(unit: UnitFile, source: string): UpgradeValue | null {
  const last = entries(unit, "X-Houston", "Upgrade").at(-1);
  if (!last) return null;
  const v = last.value.trim();
  if (!(UPGRADE_VALUES as readonly string[]).includes(v))
    throw new ConfigError(source, `[X-Houston] Upgrade=${last.value}: expected replace or side-by-side`, last.line);
  return v as UpgradeValue;
}

export interface StrategyInput {
  role: UnitSpec["role"];
  /** the fixed port it declares ([X-Houston] ServicePort=), if any */
  port: number | null;
  /** the range the agent chooses its port from (ServicePort=auto or FROM-TO), if any */
  portRange?: { from: number; to: number } | null;
  /** the service shares the stack's socket ([X-Houston] Socket=) */
  socket: boolean;
  upgrade: UpgradeValue | null;
  /** why the backend cannot stop then start (null: it can) */
  refuseReplace: string | null;
  /** why the backend cannot hand each version its own port (null: it can) */
  refuseDynamicPort?: string | null;
  source: string;
}

/** The strategy of one unit; null for units that are not versions of something (archive, socket, guard). */
export function upgradeStrategy(u: StrategyInput): UpgradeStrategy | null {
  if (u.role !== "service" && u.role !== "dependency" && u.role !== "global") return null;
  const one =
    "stop then start, one host at a time (unless --canary/--max-parallel say otherwise); other hosts keep serving";
  const range = u.portRange ? `${u.portRange.from}-${u.portRange.to}` : null;
  if (range && u.refuseDynamicPort)
    throw new ConfigError(u.source, `[X-Houston] ServicePort=${range}: ${u.refuseDynamicPort}`);
  if (range && u.socket)
    throw new ConfigError(
      u.source,
      `[X-Houston] Socket= and ServicePort=${range}: a socket hands every version one fixed port; declare ServicePort= as the socket's port, or drop Socket=`,
    );
  if (u.socket) return { kind: "socket", reason: "Socket=: hand-over, zero downtime", warning: null };
  if (u.upgrade === "replace") {
    if (u.refuseReplace) throw new ConfigError(u.source, `[X-Houston] Upgrade=replace: ${u.refuseReplace}`);
    return { kind: "replace", reason: `Upgrade=replace: ${one}`, warning: null };
  }
  if (u.upgrade === "side-by-side")
    return {
      kind: "side-by-side",
      reason: "Upgrade=side-by-side: the new version starts beside the old, which is removed after confirmation",
      warning: null,
    };
  if (range)
    return {
      kind: "dynamic-port",
      reason: `ServicePort=auto (${range}): each version gets its own port, registered in Consul; old and new run side by side, clients find the new one through Consul`,
      warning: null,
    };
  if (u.port !== null) {
    if (u.refuseReplace)
      return {
        kind: "side-by-side",
        reason: `fixed port ${u.port} and no Socket=, but ${u.refuseReplace}: side by side`,
        warning: `fixed port ${u.port}: a new version started beside the old on the same machine cannot bind it (${u.refuseReplace})`,
      };
    return { kind: "replace", reason: `fixed port ${u.port} and no Socket=: ${one}`, warning: null };
  }
  return {
    kind: "side-by-side",
    reason: "no port declared: side by side (the old version is removed after confirmation)",
    warning: null,
  };
}
