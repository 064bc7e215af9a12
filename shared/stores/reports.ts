/**
 * The store of status reports: status/<node>/<stack>, one StatusReport per stack an agent knows,
 * written by that node's agent (pretty-printed: operators read them in the Consul UI) and read by
 * the controller. An unreadable report counts as no report (that host stays pending) and is
 * returned as ignored, naming its key, for the caller to report.
 */
import type { Consul, KvEntry } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { StatusReportSchema, type StatusReport } from "../spec.js";
import { decodeEntry, encodeDocument, type Unreadable } from "./document.js";

/** stack → node → its report */
export type ReportMap = Map<string, Map<string, StatusReport>>;

export interface ReportList {
  reports: ReportMap;
  /** reports left out, each naming its key and why */
  ignored: Unreadable[];
}

/** Every readable report of a listing of status/ (a watch answer or kvList). */
export function decodeReports(entries: Pick<KvEntry, "key" | "value">[], kv: KvLayout): ReportList {
  const out: ReportList = { reports: new Map(), ignored: [] };
  for (const e of entries) {
    if (!e.key.startsWith(kv.status)) continue;
    const d = decodeEntry(StatusReportSchema, e);
    if (!d.ok) {
      out.ignored.push({ key: d.key, error: d.error });
      continue;
    }
    const r = d.value;
    let byNode = out.reports.get(r.stack);
    if (!byNode) out.reports.set(r.stack, (byNode = new Map()));
    byNode.set(r.node, r);
  }
  return out;
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
