/**
 * What the controller knows of the fleet: hosts (agents' records + their Consul health) and the
 * agents' status reports, followed with blocking queries (never sleeps).
 */
import type { Consul } from "../../shared/consul.js";
import { errorText } from "../../shared/errors.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { AgentRecordSchema, StatusReportSchema, decodeJson, type AgentRecord, type StatusReport } from "../../shared/spec.js";
import type { HostView } from "./progress.js";

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
  const { entries } = await consul.healthService("houston-agent");
  const health = new Map(entries.map((e) => [e.Node.Node, worst(e.Checks.map((c) => c.Status))]));
  return records.filter((r) => health.has(r.node)).map((r) => ({ node: r.node, meta: r.meta, agent: health.get(r.node) ?? "missing" })).sort((a, b) => a.node.localeCompare(b.node));
}

function worst(states: string[]): string {
  for (const s of ["critical", "warning", "passing"]) if (states.includes(s)) return s;
  return "passing";
}

/** All valid reports under status/, by stack then node. */
export function parseReports(entries: { key: string; value: Buffer }[], kv: KvLayout): Map<string, Map<string, StatusReport>> {
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
): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), Math.max(0, deadline - Date.now()));
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

/** Waits until Consul's health API shows the service passing with `tags` on every node in `nodes`. */
export async function followHealth(consul: Consul, service: string, tags: string[], nodes: string[], deadline: number, onChange: (passing: string[]) => void): Promise<void> {
  let index = 0;
  let last = "";
  while (Date.now() < deadline) {
    const left = Math.max(1, Math.floor((deadline - Date.now()) / 1000));
    const { entries, index: next } = await consul.healthService(service, { passing: true, tag: tags[0], index, wait: `${Math.min(30, left)}s` });
    const passing = entries.filter((e) => tags.every((t) => e.Service.Tags?.includes(t))).map((e) => e.Node.Node);
    const text = [...new Set(passing)].sort().join(",");
    if (text !== last) onChange([...new Set(passing)].sort());
    last = text;
    if (nodes.every((n) => passing.includes(n))) return;
    index = next < index ? 0 : next;
  }
  throw new TimeoutError(`${service} (${tags.join(", ")}) is not passing in Consul on ${nodes.filter((n) => !last.split(",").includes(n)).join(", ")}`);
}
