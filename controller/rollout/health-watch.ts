/**
 * Watching a service's health in Consul while a rollout confirms it (I/O: blocking queries on the
 * health API, never sleeps); the decisions are confirm.ts's.
 */
import type { Consul } from "../../shared/consul.js";
import { TimeoutError } from "../scheduler/agent-reports.js";
import { decideHealth, describeHost, hostHealth, type HealthDecision, type HostHealth } from "./confirm.js";

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
  opts: {
    deadline: number;
    limitMs: number;
    /** how long a check may answer with an HTTP error before the host fails (confirm.ts) */
    answerLimitMs?: number;
    signal: AbortSignal;
    onChange: (hosts: HostHealth[]) => void;
  },
): Promise<HealthDecision & { kind: "passing" | "failed" }> {
  let index = 0;
  let last = "";
  let hosts: HostHealth[] = [];
  const criticalSince = new Map<string, number>();
  const answers =
    opts.answerLimitMs === undefined ? undefined : { since: new Map<string, number>(), limitMs: opts.answerLimitMs };
  while (Date.now() < opts.deadline && !opts.signal.aborted) {
    // wake up in time to fail a host that stays critical, even if nothing changes meanwhile
    const nextLimit = Math.min(
      ...[...criticalSince.values()].map((t) => t + opts.limitMs),
      ...[...(answers?.since.values() ?? [])].map((t) => t + (answers?.limitMs ?? 0)),
      opts.deadline,
    );
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
    const d = decideHealth(hosts, criticalSince, Date.now(), opts.limitMs, answers);
    if (d.kind !== "waiting") return d;
    index = answer.index < index ? 0 : answer.index;
  }
  const pending = hosts.filter((h) => h.status !== "passing");
  const on = pending.length ? pending.map((h) => h.node) : nodes;
  throw new TimeoutError(
    `${service} (${tags.join(", ")}) is not passing in Consul on ${on.join(", ")}${pending.length ? ` (${pending.map(describeHost).join("; ")})` : ""}`,
  );
}
