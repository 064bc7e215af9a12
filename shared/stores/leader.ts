/**
 * The store of the scheduler role's key, scheduler/leader: held by one agent's Consul session,
 * its value a LeaderRecord (who, since when). An unreadable record of a held lock still means
 * the role is held (by someone the record does not name).
 * Whoever holds the lock is the scheduler only when its session is bound to the health of its own
 * node (serfHealth) and of its agent (service:houston-agent): such a session ends when the host or
 * the agent goes away, or the agent's token is revoked (its TTL check goes critical). A session
 * without those checks (a compromised host's, which would hold the role forever) is named by
 * holderProblem; agents then keep their last good placements and `houston nodes` says so. Who
 * holds it is the session's node as Consul records it, never the record's body.
 */
import type { Consul, KvEntry, SessionInfo } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { LeaderRecordSchema, type LeaderRecord } from "../schedule.js";
import { AGENT_SERVICE } from "../spec.js";
import { decodeEntry } from "./document.js";

export interface Leader {
  /** the session holding the role (undefined: nobody holds it) */
  session: string | undefined;
  /** what the holder wrote (null when nobody holds it or it is unreadable) */
  record: LeaderRecord | null;
}

/** The role's holder from a listing of scheduler/ (a watch answer). */
export function leaderOf(entries: KvEntry[], kv: KvLayout): Leader {
  const e = entries.find((x) => x.key === kv.schedulerLeader);
  if (!e?.session) return { session: undefined, record: null };
  const d = decodeEntry(LeaderRecordSchema, e);
  return { session: e.session, record: d.ok ? d.value : null };
}

export async function readLeader(consul: Consul, kv: KvLayout): Promise<Leader> {
  const e = await consul.kvGet(kv.schedulerLeader);
  return leaderOf(e ? [e] : [], kv);
}

/** Takes the role with `session` if it is free; returns whether it did. */
export async function acquireLeader(
  consul: Consul,
  kv: KvLayout,
  session: string,
  record: LeaderRecord,
): Promise<boolean> {
  return consul.kvPut(kv.schedulerLeader, JSON.stringify(LeaderRecordSchema.parse(record)), { acquire: session });
}

/** The checks the holder's session must be bound to: its node's serfHealth and its agent's TTL check. */
export const HOLDER_CHECKS: readonly string[] = ["serfHealth", `service:${AGENT_SERVICE}`];

/** Why a session may not act as the scheduler (pure), or null when it is well-shaped. */
export function holderProblem(info: SessionInfo | null): string | null {
  if (!info) return "a session Consul no longer has";
  const missing = HOLDER_CHECKS.filter((c) => !info.checks.includes(c));
  if (missing.length === HOLDER_CHECKS.length)
    return info.checks.length
      ? `a session not bound to its node's health (checks ${info.checks.join(", ")})`
      : "a session without health checks";
  if (missing.length) return `a session not bound to ${missing.join(" and ")}`;
  return null;
}

export interface CheckedLeader extends Leader {
  /** the holder's node as Consul records the session (null: nobody holds it, or the session is gone) */
  node: string | null;
  /** why the holder is not the scheduler (null: nobody holds it, or it is well-shaped) */
  problem: string | null;
}

/** The role's holder and whether it may act as the scheduler; `sessions` caches session info by ID. */
export async function checkLeader(
  consul: Consul,
  kv: KvLayout,
  sessions: Map<string, SessionInfo | null> = new Map(),
): Promise<CheckedLeader> {
  const leader = await readLeader(consul, kv);
  if (!leader.session) return { ...leader, node: null, problem: null };
  let info = sessions.get(leader.session);
  if (info === undefined) {
    if (sessions.size > 64) sessions.clear();
    info = await consul.sessionInfo(leader.session);
    sessions.set(leader.session, info);
  }
  return { ...leader, node: info?.node ?? null, problem: holderProblem(info) };
}

/** How an ill-shaped holder is reported (agent log, `houston nodes`). */
export function ignoredHolder(l: CheckedLeader): string {
  return `scheduler role held by ${l.node ?? "an unknown node"} with ${l.problem ?? "a well-shaped session"}: ignored (its placements are not taken in; destroy session ${l.session ?? "?"} to free the role)`;
}
