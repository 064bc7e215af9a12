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
  /** `answered`: the check got an HTTP answer, an error, for the answer limit (not silence) */
  | { kind: "failed"; host: HostHealth; criticalForMs: number; answered?: boolean };

/**
 * An HTTP check that got an answer, and it was an error (Consul's output: `HTTP GET URL: 404 Not
 * Found Output: …`): the service is up and says no, so waiting the whole -d × -m is pointless.
 */
export function httpErrorAnswer(output: string): string | null {
  const m = /^(HTTP [A-Z]+ \S+: ([1-5]\d\d)\b[^\n]*?)(?: Output: |$)/m.exec(output);
  if (!m || m[2]!.startsWith("2")) return null;
  return m[1]!.trim();
}

/** How long an HTTP check may answer with an error before the rollout fails: `answers` in a row. */
export function answerLimitMs(interval: string, answers = 3): number {
  const m = /^(\d+)(ms|s|m)$/.exec(interval);
  const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000) : 2000;
  return answers * Math.max(ms, 1000);
}

const RANK: Record<string, number> = { passing: 0, warning: 1, critical: 2 };

const worst = <C extends { Status: string }>(checks: C[]): C | null =>
  checks.reduce<C | null>((w, c) => (w === null || (RANK[c.Status] ?? 2) > (RANK[w.Status] ?? 2) ? c : w), null);

/**
 * Whether a catalog entry is this version's: Houston's own registration carries every one of
 * `tags` (`version:V`, `deploy:G`); a unit in the seed's style registers itself (an
 * `ExecStartPost=` that PUTs to the local agent, or registrator) with the bare version among its
 * tags and the machine's own address, which is what the original Houston looked for
 * (controller.py `_check_consul_for_service`).
 */
export function isVersionEntry(e: HealthEntry, tags: string[], version: string): boolean {
  const have = e.Service.Tags ?? [];
  if (tags.every((t) => have.includes(t))) return true;
  const address = e.Service.Address || e.Node.Address;
  return have.includes(version) && address === e.Node.Address;
}

/**
 * Per target node: the worst of the service's own checks and the node's (serfHealth), quoting the
 * service's check, never the node's, unless the node itself is what is not passing.
 */
export function hostHealth(entries: HealthEntry[], tags: string[], nodes: string[], version?: string): HostHealth[] {
  const bare = version ?? tags.find((t) => t.startsWith("version:"))?.slice("version:".length) ?? "";
  return nodes.map((node) => {
    const mine = entries.filter((e) => e.Node.Node === node && isVersionEntry(e, tags, bare));
    if (mine.length === 0)
      return { node, status: "missing", output: `not registered with tag ${bare} or ${tags.join(", ")} yet` };
    const own = mine.flatMap((e) => e.Checks.filter((c) => c.ServiceID === e.Service.ID));
    const nodeChecks = mine[0]!.Checks.filter((c) => c.ServiceID === undefined || c.ServiceID === "");
    const svc = worst(own);
    const nd = worst(nodeChecks);
    if (nd && (RANK[nd.Status] ?? 2) > (RANK[svc?.Status ?? "passing"] ?? 2))
      return {
        node,
        status: nd.Status,
        output: `the node is ${nd.Status} in Consul (${nd.CheckID}): ${nd.Output.trim()}`,
      };
    return { node, status: svc?.Status ?? "passing", output: (svc?.Output ?? "").trim() };
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
  answers?: { since: Map<string, number>; limitMs: number },
): HealthDecision {
  // a check answering with an HTTP error fails sooner (answers.limitMs) than one not answering
  if (answers) {
    for (const h of hosts) {
      if (h.status === "critical" && httpErrorAnswer(h.output)) {
        if (!answers.since.has(h.node)) answers.since.set(h.node, now);
      } else answers.since.delete(h.node);
    }
    for (const h of hosts) {
      const since = answers.since.get(h.node);
      if (since !== undefined && now - since >= Math.min(answers.limitMs, limitMs))
        return { kind: "failed", host: h, criticalForMs: now - since, answered: true };
    }
  }
  for (const h of hosts) {
    // never registered counts as critical: a service that never shows up fails after -d × -m,
    // not after the whole --timeout
    if (h.status === "critical" || h.status === "missing") {
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
