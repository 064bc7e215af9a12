/**
 * What the agents say (I/O, read through the agents' documents in KV): hosts (agents' records +
 * their Consul health) and the agents' status reports, followed with blocking queries (never
 * sleeps). Both backends read hosts and reports here: fleet's units are reported by the agents too.
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
import { ordinal } from "../../shared/order.js";
import type { HostView } from "./targets.js";

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
