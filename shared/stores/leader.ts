/**
 * The store of the scheduler role's key, scheduler/leader: held by one agent's Consul session,
 * its value a LeaderRecord (who, since when). An unreadable record of a held lock still means
 * the role is held (by someone the record does not name).
 */
import type { Consul, KvEntry } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { LeaderRecordSchema, type LeaderRecord } from "../schedule.js";
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
