/**
 * The per-stack deploy lock: a KV key acquired with a Consul session (TTL 15 s, renewed every 5 s,
 * LockDelay 0 s, released on invalidation), so a killed controller cannot leave a stale lock:
 * its session expires and the next run proceeds.
 */
import { hostname, userInfo } from "node:os";
import { z } from "zod";
import type { Consul } from "../../shared/consul.js";
import { LockHeldError, errorText } from "../../shared/errors.js";
import type { KvLayout } from "../../shared/kv-layout.js";

const HolderSchema = z.object({
  user: z.string(),
  host: z.string(),
  pid: z.number(),
  startedAt: z.string(),
  what: z.string(),
});
export type LockHolder = z.infer<typeof HolderSchema>;

export const LOCK_TTL_SECONDS = 15;

export function whoAmI(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return `${user}@${hostname()}`;
}

export class DeployLock {
  private timer: NodeJS.Timeout | null = null;
  private constructor(
    private readonly consul: Consul,
    readonly key: string,
    readonly session: string,
  ) {}

  /** Acquires the stack's lock or throws LockHeldError naming the holder. */
  static async acquire(consul: Consul, kv: KvLayout, stack: string, what: string): Promise<DeployLock> {
    const key = kv.lock(stack);
    const session = await consul.sessionCreate({
      name: `houston deploy ${stack}`,
      ttlSeconds: LOCK_TTL_SECONDS,
      lockDelay: "0s",
      behavior: "release",
    });
    const holder: LockHolder = {
      user: whoAmI().split("@")[0] ?? "unknown",
      host: hostname(),
      pid: process.pid,
      startedAt: new Date().toISOString(),
      what,
    };
    if (!(await consul.kvPut(key, JSON.stringify(holder), { acquire: session }))) {
      await consul.sessionDestroy(session).catch(() => undefined);
      const current = await describeHolder(consul, key);
      throw new LockHeldError(
        `stack ${stack} is locked by ${current}; wait for it to finish, or break it with --force-unlock`,
      );
    }
    const lock = new DeployLock(consul, key, session);
    lock.timer = setInterval(
      () => {
        void consul.sessionRenew(session).catch(() => undefined);
      },
      (LOCK_TTL_SECONDS * 1000) / 3,
    );
    lock.timer.unref();
    return lock;
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.consul.kvPut(this.key, "", { release: this.session }).catch(() => false);
    await this.consul.sessionDestroy(this.session).catch(() => undefined);
  }
}

async function describeHolder(consul: Consul, key: string): Promise<string> {
  const entry = await consul.kvGet(key);
  if (!entry?.session) return "a session that just ended (try again)";
  try {
    const h = HolderSchema.parse(JSON.parse(entry.value.toString("utf8")));
    return `${h.user}@${h.host} (pid ${h.pid}, ${h.what}, since ${h.startedAt}, session ${entry.session})`;
  } catch (err) {
    return `session ${entry.session} (holder unreadable: ${errorText(err)})`;
  }
}

/** Breaks the stack's lock by destroying the holder's session; returns who held it (null: nobody). */
export async function forceUnlock(consul: Consul, kv: KvLayout, stack: string): Promise<string | null> {
  const key = kv.lock(stack);
  const entry = await consul.kvGet(key);
  if (!entry?.session) return null;
  const who = await describeHolder(consul, key);
  await consul.sessionDestroy(entry.session);
  return who;
}
