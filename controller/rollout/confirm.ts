/**
 * Confirming a service in Consul (pure): from the health API's entries for the service, what each
 * target host's checks say, whether all pass with the version's tags, and whether one has been
 * critical longer than a unit may take (then the rollout fails now, quoting the check's output,
 * not after the whole --timeout).
 */
import type { HealthEntry } from "../../shared/consul.js";

export interface HostHealth {
  node: string;
  /** passing | warning | critical | missing (not registered with these tags yet) */
  status: string;
  output: string;
}

export type HealthDecision =
  | { kind: "passing" }
  | { kind: "waiting"; hosts: HostHealth[] }
  | { kind: "failed"; host: HostHealth; criticalForMs: number };

const RANK: Record<string, number> = { passing: 0, warning: 1, critical: 2 };

/** Worst of the service's own checks and the node's serfHealth, per target node. */
export function hostHealth(entries: HealthEntry[], tags: string[], nodes: string[]): HostHealth[] {
  return nodes.map((node) => {
    const mine = entries.filter((e) => e.Node.Node === node && tags.every((t) => e.Service.Tags?.includes(t)));
    if (mine.length === 0) return { node, status: "missing", output: "not registered with these tags yet" };
    const checks = mine.flatMap((e) =>
      e.Checks.filter((c) => c.ServiceID === undefined || c.ServiceID === "" || c.ServiceID === e.Service.ID),
    );
    const worst = checks.reduce<{ Status: string; Output: string } | null>(
      (w, c) => (w === null || (RANK[c.Status] ?? 2) > (RANK[w.Status] ?? 2) ? c : w),
      null,
    );
    return { node, status: worst?.Status ?? "passing", output: (worst?.Output ?? "").trim() };
  });
}

/**
 * `criticalSince`: when each node was first seen critical in a row (kept by the caller across
 * answers; updated here). `limitMs`: -d × -m, the longest one unit may take.
 */
export function decideHealth(
  hosts: HostHealth[],
  criticalSince: Map<string, number>,
  now: number,
  limitMs: number,
): HealthDecision {
  for (const h of hosts) {
    if (h.status === "critical") {
      if (!criticalSince.has(h.node)) criticalSince.set(h.node, now);
    } else criticalSince.delete(h.node);
  }
  for (const h of hosts) {
    const since = criticalSince.get(h.node);
    if (since !== undefined && now - since >= limitMs) return { kind: "failed", host: h, criticalForMs: now - since };
  }
  return hosts.every((h) => h.status === "passing") ? { kind: "passing" } : { kind: "waiting", hosts };
}

export function describeHost(h: HostHealth): string {
  return `${h.node}: ${h.status}${h.output ? `: ${h.output.split("\n")[0]}` : ""}`;
}
