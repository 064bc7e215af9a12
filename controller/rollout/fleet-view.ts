/**
 * What the controller knows of the fleet: hosts (agents' records + their Consul health) and the
 * agents' status reports, followed with blocking queries (never sleeps).
 */
import { AGENT_SERVICE } from "../../shared/spec.js";
import { worstStatus, type Consul } from "../../shared/consul.js";
import { errorText } from "../../shared/errors.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import {
  AgentRecordSchema,
  StatusReportSchema,
  decodeJson,
  type AgentRecord,
  type StatusReport,
} from "../../shared/spec.js";
import { decideHealth, describeHost, hostHealth, type HealthDecision, type HostHealth } from "./confirm.js";
import type { HostView } from "./progress.js";
import { ordinal } from "../../shared/order.js";

export async function readAgents(consul: Consul, kv: KvLayout): Promise<{ records: AgentRecord[]; invalid: string[] }> {
  const records: AgentRecord[] = [];
  const invalid: string[] = [];
  for (const e of await consul.kvList(kv.agents)) {
    try {
      records.push(decodeJson(AgentRecordSchema, e.key, e.value));
    } catch (err) {
      invalid.push(errorText(err));
    }
  }
  return { records, invalid };
}

/** Hosts with an agent: its record's metadata and the state of its houston-agent check. */
export async function readHosts(consul: Consul, kv: KvLayout): Promise<HostView[]> {
  const { records } = await readAgents(consul, kv);
  const { entries } = await consul.healthService(AGENT_SERVICE);
  const health = new Map(entries.map((e) => [e.Node.Node, worstStatus(e)]));
  return records
    .filter((r) => health.has(r.node))
    .map((r) => ({
      node: r.node,
      meta: r.meta,
      ...(r.machineId ? { machineId: r.machineId } : {}),
      agent: health.get(r.node) ?? "missing",
    }))
    .sort((a, b) => ordinal(a.node, b.node));
}

/** All valid reports under status/, by stack then node. */
export function parseReports(
  entries: { key: string; value: Buffer }[],
  kv: KvLayout,
): Map<string, Map<string, StatusReport>> {
  const out = new Map<string, Map<string, StatusReport>>();
  for (const e of entries) {
    if (!e.key.startsWith(kv.status)) continue;
    let r: StatusReport;
    try {
      r = decodeJson(StatusReportSchema, e.key, e.value);
    } catch {
      continue; // an unreadable report counts as no report: that host stays pending
    }
    let m = out.get(r.stack);
    if (!m) out.set(r.stack, (m = new Map()));
    m.set(r.node, r);
  }
  return out;
}

export class TimeoutError extends Error {}

/**
 * Follows the stack's reports until `check` returns a value, or the deadline passes
 * (TimeoutError carrying the last `describe` text).
 */
export async function followReports<T>(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  deadline: number,
  check: (reports: ReadonlyMap<string, StatusReport>) => T | undefined,
  describe: () => string,
  signal?: AbortSignal,
): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), Math.max(0, deadline - Date.now()));
  signal?.addEventListener("abort", () => ac.abort(), { once: true });
  try {
    for await (const { entries } of consul.watchPrefix(kv.status, { signal: ac.signal, wait: "30s" })) {
      const result = check(parseReports(entries, kv).get(stack) ?? new Map());
      if (result !== undefined) return result;
    }
    throw new TimeoutError(describe());
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Follows the service's health in Consul (blocking queries) until every target node passes with
 * `tags`, a node stays critical for `limitMs`, the deadline passes (TimeoutError), or `signal`
 * aborts. `onChange` hears each host's status and check output whenever they change.
 */
export async function followHealth(
  consul: Consul,
  service: string,
  tags: string[],
  nodes: string[],
  opts: { deadline: number; limitMs: number; signal: AbortSignal; onChange: (hosts: HostHealth[]) => void },
): Promise<HealthDecision & { kind: "passing" | "failed" }> {
  let index = 0;
  let last = "";
  let hosts: HostHealth[] = [];
  const criticalSince = new Map<string, number>();
  while (Date.now() < opts.deadline && !opts.signal.aborted) {
    // wake up in time to fail a host that stays critical, even if nothing changes meanwhile
    const nextLimit = Math.min(...[...criticalSince.values()].map((t) => t + opts.limitMs), opts.deadline);
    const left = Math.max(1, Math.ceil((nextLimit - Date.now()) / 1000));
    let answer;
    try {
      // every entry of the service: the seed's self-registered units carry the bare version, not
      // Houston's tags (hostHealth tells this version's entries apart)
      answer = await consul.healthService(service, {
        index,
        wait: `${Math.min(30, left)}s`,
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal.aborted) break;
      throw err;
    }
    hosts = hostHealth(answer.entries, tags, nodes);
    const text = JSON.stringify(hosts);
    if (text !== last) opts.onChange(hosts);
    last = text;
    const d = decideHealth(hosts, criticalSince, Date.now(), opts.limitMs);
    if (d.kind !== "waiting") return d;
    index = answer.index < index ? 0 : answer.index;
  }
  const pending = hosts.filter((h) => h.status !== "passing");
  const on = pending.length ? pending.map((h) => h.node) : nodes;
  throw new TimeoutError(
    `${service} (${tags.join(", ")}) is not passing in Consul on ${on.join(", ")}${pending.length ? ` (${pending.map(describeHost).join("; ")})` : ""}`,
  );
}
