/**
 * The store of status reports: status/<node>/<stack>, one StatusReport per stack an agent knows,
 * written by that node's agent (pretty-printed: operators read them in the Consul UI) and read by
 * the controller. Reports are keyed by the node and stack of their KV key, never by their body:
 * a node's agent token may write only status/<its node>/, so a body naming another node (or
 * stack) is ignored. An ignored or unreadable report counts as no report (that host stays
 * pending) and is returned, naming its key, for the caller to warn about.
 */
import type { Consul, KvEntry } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { StatusReportSchema, type StatusReport } from "../spec.js";
import { decodeEach, encodeDocument, type Unreadable } from "./document.js";

/** stack → node → its report */
export type ReportMap = Map<string, Map<string, StatusReport>>;

export interface ReportList {
  reports: ReportMap;
  /** reports left out, each naming its key and why */
  ignored: Unreadable[];
}

/** Every readable report of a listing of status/ (a watch answer or kvList), by its key's stack and node. */
export function decodeReports(entries: Pick<KvEntry, "key" | "value">[], kv: KvLayout): ReportList {
  const reports: ReportMap = new Map();
  const ignored = decodeEach(entries, kv.status, StatusReportSchema, (r, key) => {
    const at = kv.nodeStackOfStatusKey(key);
    if (!at) return "not a status/<node>/<stack> key; ignored";
    if (r.node !== at.node || r.stack !== at.stack)
      return `the report names node ${r.node} and stack ${r.stack}, but its key is ${at.node}'s report of ${at.stack}; ignored`;
    let byNode = reports.get(at.stack);
    if (!byNode) reports.set(at.stack, (byNode = new Map()));
    byNode.set(at.node, r);
    return null;
  });
  return { reports, ignored };
}

export async function listReports(consul: Consul, kv: KvLayout): Promise<ReportList> {
  return decodeReports(await consul.kvList(kv.status), kv);
}

/** Writes `node`'s report of `report.stack` (stamped with the time of writing). */
export async function putReport(
  consul: Consul,
  kv: KvLayout,
  node: string,
  report: Omit<StatusReport, "updatedAt">,
): Promise<void> {
  const doc: StatusReport = { ...report, updatedAt: new Date().toISOString() };
  await consul.kvPut(kv.stackStatus(node, report.stack), encodeDocument(doc, true));
}

export async function deleteReport(consul: Consul, kv: KvLayout, node: string, stack: string): Promise<void> {
  await consul.kvDelete(kv.stackStatus(node, stack));
}
