/**
 * What the agents say, followed (I/O): a stack's status reports (shared/stores/reports.ts) watched
 * with blocking queries (never sleeps) until a check is satisfied or the deadline passes. Both
 * backends follow reports here: fleet's units are reported by the agents too.
 */
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import type { StatusReport } from "../../shared/spec.js";
import { decodeReports } from "../../shared/stores/reports.js";

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
      const result = check(decodeReports(entries, kv).reports.get(stack) ?? new Map());
      if (result !== undefined) return result;
    }
    throw new TimeoutError(describe());
  } finally {
    clearTimeout(timer);
  }
}
