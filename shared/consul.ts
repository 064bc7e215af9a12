/**
 * The one Consul edge: a typed client over Consul's HTTP API (KV, sessions, the local agent's
 * services and checks, health), on the npm `consul` package's transport (consul-transport.ts:
 * keep-alive, TLS, cancellation); how a request goes out and an error comes back is in
 * consul-base.ts; what goes over the wire, with its schemas, is in consul-wire.ts.
 * Every answer is validated before it is typed. Values are Buffers (binary-safe).
 * Facts it encodes: `?recurse`/`?keys` on an empty prefix answer 404 (→ []), prefix deletes are
 * string prefixes (so we insist on a trailing `/`), a failed CAS answers `false`, 413 = value too big.
 */
import { z } from "zod";
import { Backoff, sleep } from "./backoff.js";
import { ConsulBase } from "./consul-base.js";
import { ConsulError, ConsulPermissionError } from "./errors.js";
import {
  AgentChecks,
  AgentSelf,
  AgentServices,
  HealthEntry,
  KvRows,
  MAX_TXN_OPS,
  SessionRow,
  checkKey,
  checkPrefix,
  encodeKey,
  toEntry,
  waitMs,
  type KvEntry,
  type ServiceRegistration,
  type SessionInfo,
  type TxnOp,
} from "./consul-wire.js";

export {
  MAX_TXN_OPS,
  checkKey,
  parseJson,
  worstStatus,
  type ConsulOptions,
  type HealthEntry,
  type KvEntry,
  type ServiceRegistration,
  type SessionInfo,
  type TxnOp,
} from "./consul-wire.js";

export { SLOW_NOTICE_MS } from "./consul-base.js";

export class Consul extends ConsulBase {
  // ---- KV -------------------------------------------------------------------------------

  async kvGet(key: string, opts: { signal?: AbortSignal } = {}): Promise<KvEntry | null> {
    checkKey(key);
    const res = await this.request("GET", `/v1/kv/${encodeKey(key)}`, opts);
    if (this.kvMissing(`GET ${key}`, res)) return null;
    if (res.status !== 200) this.fail(`GET ${key}`, res, `key:read on ${key}`);
    const rows = this.json(KvRows, res.body, `GET ${key}`);
    return rows[0] ? toEntry(rows[0]) : null;
  }

  /** A key's value as Consul stores it (?raw: no JSON, no base64), or null when it is absent. */
  async kvGetRaw(key: string): Promise<Buffer | null> {
    checkKey(key);
    const res = await this.request("GET", `/v1/kv/${encodeKey(key)}`, { query: { raw: true } });
    if (this.kvMissing(`GET ${key}?raw`, res)) return null;
    if (res.status !== 200) this.fail(`GET ${key}?raw`, res, `key:read on ${key}`);
    return res.body;
  }

  /** Every entry under prefix (which must end in '/'); [] when there are none. */
  async kvList(prefix: string): Promise<KvEntry[]> {
    return (await this.kvListAt(prefix, 0)).entries;
  }

  /** kvList as a (possibly blocking) query: returns the entries and X-Consul-Index. */
  async kvListAt(
    prefix: string,
    index: number,
    opts: { signal?: AbortSignal; wait?: string; consistent?: boolean } = {},
  ): Promise<{ entries: KvEntry[]; index: number }> {
    checkPrefix(prefix);
    const blocking = index > 0;
    const res = await this.request("GET", `/v1/kv/${encodeKey(prefix)}`, {
      query: {
        recurse: true,
        index: blocking ? index : undefined,
        wait: blocking ? (opts.wait ?? "60s") : undefined,
        consistent: opts.consistent,
      },
      signal: opts.signal,
      timeoutMs: blocking ? waitMs(opts.wait ?? "60s") + 15_000 : undefined,
    });
    if (this.kvMissing(`GET ${prefix}?recurse`, res)) return { entries: [], index: res.index };
    if (res.status !== 200) this.fail(`GET ${prefix}?recurse`, res, `key:read on ${prefix}`);
    return { entries: this.json(KvRows, res.body, `GET ${prefix}?recurse`).map(toEntry), index: res.index };
  }

  /** Key names under prefix (which must end in '/'); [] when there are none. */
  async kvKeys(prefix: string, separator?: string): Promise<string[]> {
    checkPrefix(prefix);
    const res = await this.request("GET", `/v1/kv/${encodeKey(prefix)}`, { query: { keys: true, separator } });
    if (this.kvMissing(`GET ${prefix}?keys`, res)) return [];
    if (res.status !== 200) this.fail(`GET ${prefix}?keys`, res, `key:read on ${prefix}`);
    return this.json(z.array(z.string()), res.body, `GET ${prefix}?keys`);
  }

  /**
   * PUT a value. With `cas`, it is written only if the key's ModifyIndex is still `cas`
   * (0 = only if absent). Returns whether it was written.
   */
  async kvPut(
    key: string,
    value: Buffer | string,
    opts: { cas?: number; acquire?: string; release?: string } = {},
  ): Promise<boolean> {
    checkKey(key);
    const res = await this.request("PUT", `/v1/kv/${encodeKey(key)}`, {
      query: { cas: opts.cas, acquire: opts.acquire, release: opts.release },
      body: typeof value === "string" ? Buffer.from(value, "utf8") : value,
    });
    if (res.status !== 200)
      this.fail(`PUT ${key}`, res, `key:write on ${key}${opts.acquire || opts.release ? " and session:write" : ""}`);
    return res.body.toString("utf8").trim() === "true";
  }

  async kvDelete(key: string, opts: { cas?: number } = {}): Promise<boolean> {
    checkKey(key);
    const res = await this.request("DELETE", `/v1/kv/${encodeKey(key)}`, { query: { cas: opts.cas } });
    if (res.status !== 200) this.fail(`DELETE ${key}`, res, `key:write on ${key}`);
    return res.body.toString("utf8").trim() === "true";
  }

  /** Deletes every key under prefix; the prefix must end in '/' (else `a/b` would also delete `a/bx`). */
  async kvDeletePrefix(prefix: string): Promise<void> {
    checkPrefix(prefix);
    const res = await this.request("DELETE", `/v1/kv/${encodeKey(prefix)}`, { query: { recurse: true } });
    if (res.status !== 200) this.fail(`DELETE ${prefix}?recurse`, res, `key:write on ${prefix}`);
  }

  /** One atomic transaction of ≤ 64 KV operations. Returns false (nothing applied) if any op failed, e.g. a CAS. */
  /** On success, `indexes` holds the ModifyIndex of each op's key (0 for deletes). */
  async txn(ops: TxnOp[]): Promise<{ ok: boolean; errors: string[]; indexes: number[] }> {
    if (ops.length === 0) return { ok: true, errors: [], indexes: [] };
    if (ops.length > MAX_TXN_OPS)
      throw new ConsulError(`transaction of ${ops.length} operations exceeds Consul's limit of ${MAX_TXN_OPS}`);
    const body = ops.map((op) => {
      checkKey(op.key);
      const base = { Verb: op.verb, Key: op.key } as Record<string, unknown>;
      if ("value" in op)
        base.Value = (typeof op.value === "string" ? Buffer.from(op.value) : op.value).toString("base64");
      if ("index" in op) base.Index = op.index;
      if ("session" in op) base.Session = op.session;
      return { KV: base };
    });
    const res = await this.request("PUT", "/v1/txn", { body: JSON.stringify(body) });
    if (res.status === 200) {
      const parsed = this.json(
        z.object({ Results: z.array(z.object({ KV: z.object({ ModifyIndex: z.number() }).nullish() })).nullable() }),
        res.body,
        "txn",
      );
      return { ok: true, errors: [], indexes: (parsed.Results ?? []).map((r) => r.KV?.ModifyIndex ?? 0) };
    }
    if (res.status === 409) {
      const parsed = this.json(
        z.object({ Errors: z.array(z.object({ OpIndex: z.number(), What: z.string() })).nullable() }),
        res.body,
        "txn",
      );
      const denied = (parsed.Errors ?? []).find((e) => /permission denied/i.test(e.What));
      if (denied)
        throw new ConsulPermissionError(
          `txn: Consul's ACLs refused the token; it needs key:write on ${ops[denied.OpIndex]?.key ?? "the transaction's keys"}`,
          403,
        );
      return {
        ok: false,
        errors: (parsed.Errors ?? []).map((e) => `op ${e.OpIndex} (${ops[e.OpIndex]?.key ?? "?"}): ${e.What}`),
        indexes: [],
      };
    }
    this.fail("txn", res, `key:write on ${ops.map((o) => o.key).join(", ")}`);
  }

  /**
   * Blocking-query watch of a prefix as an async iterator. Yields the entries on the first answer
   * and then whenever X-Consul-Index changes. Resets the index to 0 when it goes backwards (e.g. a
   * Consul restart), backs off with jitter on errors (reporting them to onError) and then reads
   * afresh, so the first answer after an outage is always yielded. Ends on abort.
   */
  async *watchPrefix(
    prefix: string,
    opts: {
      signal?: AbortSignal;
      wait?: string;
      onError?: (err: unknown) => void;
      backoff?: Backoff;
      consistent?: boolean;
    } = {},
  ): AsyncGenerator<{ entries: KvEntry[]; index: number }> {
    const backoff = opts.backoff ?? new Backoff({ minMs: 250, maxMs: 10_000 });
    let index = 0;
    while (!opts.signal?.aborted) {
      let result: { entries: KvEntry[]; index: number };
      try {
        result = await this.kvListAt(prefix, index, {
          signal: opts.signal,
          wait: opts.wait,
          consistent: opts.consistent,
        });
      } catch (err) {
        if (opts.signal?.aborted) return;
        opts.onError?.(err);
        await sleep(backoff.next(), opts.signal);
        index = 0; // after an outage, read afresh (and yield): the caller learns Consul is back at once
        continue;
      }
      backoff.reset();
      let next = result.index;
      if (next < index || next <= 0) next = 0; // went backwards: start over with a fresh read
      const changed = index === 0 || next !== index;
      index = next;
      if (changed) yield result;
      if (index === 0) {
        // Consul handed us no usable index; a fresh read would return at once, so pace it.
        await sleep(backoff.next(), opts.signal);
        index = Math.max(result.index, 1);
      }
    }
  }

  // ---- sessions ---------------------------------------------------------------------------

  async sessionCreate(opts: {
    name: string;
    ttlSeconds: number;
    lockDelay?: string;
    behavior?: "release" | "delete";
    /** health checks of the local node that end the session when critical (default serfHealth) */
    checks?: string[];
  }): Promise<string> {
    if (opts.ttlSeconds < 10 || opts.ttlSeconds > 86_400)
      throw new ConsulError(`session TTL must be 10s..24h, got ${opts.ttlSeconds}s`);
    const res = await this.request("PUT", "/v1/session/create", {
      body: JSON.stringify({
        Name: opts.name,
        TTL: `${opts.ttlSeconds}s`,
        LockDelay: opts.lockDelay ?? "0s",
        Behavior: opts.behavior ?? "release",
        ...(opts.checks ? { Checks: opts.checks } : {}),
      }),
    });
    if (res.status !== 200)
      this.fail("session create", res, "session:write on the node of the Consul agent it talks to");
    return this.json(z.object({ ID: z.string() }), res.body, "session create").ID;
  }

  /** Returns false when the session no longer exists. */
  async sessionRenew(id: string): Promise<boolean> {
    const res = await this.request("PUT", `/v1/session/renew/${encodeURIComponent(id)}`);
    if (res.status === 404) return false;
    if (res.status !== 200) this.fail(`session renew ${id}`, res, "session:write");
    return true;
  }

  /**
   * A session as Consul holds it: its node and the health checks bound to it (Consul 1.8: `Checks`;
   * later versions also NodeChecks/ServiceChecks), its TTL ("" when none); null when it is gone.
   */
  async sessionInfo(id: string): Promise<SessionInfo | null> {
    const res = await this.request("GET", `/v1/session/info/${encodeURIComponent(id)}`);
    if (res.status !== 200) this.fail(`session info ${id}`, res, "session:read on the session's node");
    const rows = this.json(z.array(SessionRow).nullable(), res.body, `session info ${id}`) ?? [];
    const r = rows[0];
    if (!r) return null;
    const service = (r.ServiceChecks ?? []).map((c) => c.ID);
    return {
      id: r.ID,
      node: r.Node,
      checks: [...(r.Checks ?? []), ...(r.NodeChecks ?? []), ...service],
      ttl: r.TTL ?? "",
    };
  }

  async sessionDestroy(id: string): Promise<void> {
    const res = await this.request("PUT", `/v1/session/destroy/${encodeURIComponent(id)}`);
    if (res.status !== 200) this.fail(`session destroy ${id}`, res, "session:write");
  }

  // ---- agent, catalog, health -------------------------------------------------------------

  async agentSelf(): Promise<{ nodeName: string; datacenter: string; meta: Record<string, string> }> {
    const res = await this.request("GET", "/v1/agent/self");
    if (res.status !== 200) this.fail("agent self", res, "agent:read on the local Consul agent's node");
    const self = this.json(AgentSelf, res.body, "agent self");
    return { nodeName: self.Config.NodeName, datacenter: self.Config.Datacenter, meta: self.Meta ?? {} };
  }

  async healthService(
    service: string,
    opts: { passing?: boolean; tag?: string; index?: number; wait?: string; signal?: AbortSignal } = {},
  ): Promise<{ entries: HealthEntry[]; index: number }> {
    const blocking = (opts.index ?? 0) > 0;
    const res = await this.request("GET", `/v1/health/service/${encodeURIComponent(service)}`, {
      query: {
        passing: opts.passing,
        tag: opts.tag,
        index: blocking ? opts.index : undefined,
        wait: blocking ? (opts.wait ?? "60s") : undefined,
      },
      signal: opts.signal,
      timeoutMs: blocking ? waitMs(opts.wait ?? "60s") + 15_000 : undefined,
    });
    if (res.status !== 200) this.fail(`health service ${service}`, res, `service:read on ${service} and node:read`);
    return { entries: this.json(z.array(HealthEntry), res.body, `health service ${service}`), index: res.index };
  }

  async agentServiceRegister(reg: ServiceRegistration): Promise<void> {
    const res = await this.request("PUT", "/v1/agent/service/register", { body: JSON.stringify(reg) });
    if (res.status !== 200) this.fail(`register service ${reg.ID}`, res, `service:write on ${reg.Name}`);
  }

  /** Sets a TTL check's status and output on the local agent. */
  async agentCheckUpdate(id: string, status: "passing" | "warning" | "critical", output: string): Promise<void> {
    const res = await this.request("PUT", `/v1/agent/check/update/${encodeURIComponent(id)}`, {
      body: JSON.stringify({ Status: status, Output: output }),
    });
    // a check the local agent does not have (it forgot it): Consul 1.8 says 500, later ones 404
    if (res.status === 404)
      throw new ConsulError(`update check ${id}: Consul at ${this.addr} has no such check (404)`, 404);
    if (res.status !== 200) this.fail(`update check ${id}`, res, "service:write on the check's service");
  }

  /** The services registered with the local Consul agent: ID, name and Meta. */
  async agentServices(): Promise<{ id: string; name: string; meta: Record<string, string> }[]> {
    const res = await this.request("GET", "/v1/agent/services");
    if (res.status !== 200) this.fail("agent services", res, "service:read on the services");
    return Object.values(this.json(AgentServices, res.body, "agent services")).map((s) => ({
      id: s.ID,
      name: s.Service,
      meta: s.Meta ?? {},
    }));
  }

  /** The checks registered with the local Consul agent: ID and the service they belong to ("" for none). */
  async agentChecks(): Promise<{ id: string; serviceId: string }[]> {
    const res = await this.request("GET", "/v1/agent/checks");
    if (res.status !== 200) this.fail("agent checks", res, "service:read and node:read");
    return Object.values(this.json(AgentChecks, res.body, "agent checks")).map((c) => ({
      id: c.CheckID,
      serviceId: c.ServiceID ?? "",
    }));
  }

  async agentCheckDeregister(id: string): Promise<void> {
    const res = await this.request("PUT", `/v1/agent/check/deregister/${encodeURIComponent(id)}`);
    if (res.status !== 200 && res.status !== 404)
      this.fail(`deregister check ${id}`, res, "service:write on the check's service");
  }

  async agentServiceDeregister(id: string): Promise<void> {
    const res = await this.request("PUT", `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
    if (res.status !== 200 && res.status !== 404)
      this.fail(`deregister service ${id}`, res, "service:write on that service");
  }
}
