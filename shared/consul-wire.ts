/**
 * What goes over the wire to Consul (consul.ts sends it): options, request and answer shapes with
 * their schemas, the rules for keys and prefixes Consul itself does not enforce, and what an
 * unexpected answer means (ACLs, size, or something other than Consul answering).
 */
import { z } from "zod";
import type { RawResponse, TlsOptions } from "./consul-transport.js";
import { ConsulError, ConsulPermissionError, ConsulUnreachableError, ValueTooLargeError } from "./errors.js";

export interface ConsulOptions {
  /** http(s)://host:port; default $CONSUL_HTTP_ADDR or http://127.0.0.1:8500 */
  addr?: string | undefined;
  /** ACL token; default $CONSUL_HTTP_TOKEN */
  token?: string | undefined;
  /** per-request timeout for non-blocking requests */
  timeoutMs?: number;
  /**
   * said every slowNoticeMs while a non-blocking request has no answer yet (a Consul that
   * accepts the connection and says nothing): the CLI warns rather than wait 30 s in silence
   */
  onSlow?: (what: string, waitedMs: number, timeoutMs: number) => void;
  /** how often onSlow is said (default SLOW_NOTICE_MS, 10 s) */
  slowNoticeMs?: number;
  /** TLS files and server name; default from CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME */
  tls?: TlsOptions;
}

export interface KvEntry {
  key: string;
  value: Buffer;
  modifyIndex: number;
  createIndex: number;
  flags: number;
  session?: string | undefined;
}

export type TxnOp =
  | { verb: "set"; key: string; value: Buffer | string }
  | { verb: "cas"; key: string; value: Buffer | string; index: number }
  | { verb: "delete"; key: string }
  | { verb: "delete-tree"; key: string }
  | { verb: "delete-cas"; key: string; index: number }
  /** fails the transaction unless `key` is locked by `session` (a leader's writes) */
  | { verb: "check-session"; key: string; session: string };

export interface ServiceRegistration {
  ID: string;
  Name: string;
  Tags?: string[];
  Port?: number;
  Meta?: Record<string, string>;
  Check?: {
    HTTP?: string;
    TCP?: string;
    /** a TTL check: the registrant passes it itself (agentCheckUpdate) */
    TTL?: string;
    Notes?: string;
    Interval?: string;
    Timeout?: string;
    DeregisterCriticalServiceAfter?: string;
    Status?: string;
  };
  /** TTL checks the registrant sets itself (agentCheckUpdate) */
  Checks?: { CheckID: string; Name: string; TTL: string; Status?: string; Notes?: string }[];
}

export const KvRow = z.object({
  Key: z.string(),
  Value: z.string().nullable(),
  ModifyIndex: z.number(),
  CreateIndex: z.number(),
  Flags: z.number(),
  Session: z.string().optional(),
});
export const KvRows = z.array(KvRow);

export const NodeMeta = z
  .record(z.string())
  .nullable()
  .transform((m) => m ?? {});

export const HealthEntry = z.object({
  Node: z.object({ Node: z.string(), Address: z.string(), Meta: NodeMeta }),
  Service: z.object({
    ID: z.string(),
    Service: z.string(),
    Tags: z.array(z.string()).nullable(),
    Port: z.number(),
    Address: z.string().optional(),
  }),
  Checks: z.array(
    z.object({ CheckID: z.string(), Status: z.string(), Output: z.string(), ServiceID: z.string().optional() }),
  ),
});
export type HealthEntry = z.infer<typeof HealthEntry>;

/** A node's entry as one status: its worst check (critical, warning, else passing). */
export function worstStatus(entry: HealthEntry): string {
  const states = entry.Checks.map((c) => c.Status);
  for (const s of ["critical", "warning", "passing"]) if (states.includes(s)) return s;
  return "passing";
}

export const AgentSelf = z.object({
  Config: z.object({ NodeName: z.string(), Datacenter: z.string() }),
  Meta: NodeMeta.optional(),
});

/** /v1/agent/services: what the local agent has registered, by service ID (only what Houston reads) */
export const AgentServices = z.record(
  z.object({ ID: z.string(), Service: z.string(), Meta: z.record(z.string()).nullable().optional() }),
);

/** /v1/agent/checks: the local agent's checks, by check ID */
export const AgentChecks = z.record(z.object({ CheckID: z.string(), ServiceID: z.string().optional() }));

export const MAX_TXN_OPS = 64;

/** Keys Consul would 301 or misinterpret are refused before they are sent. */
export function checkKey(key: string): void {
  if (key === "" || key.startsWith("/") || key.includes("//") || key.split("/").some((s) => s === "." || s === "..")) {
    throw new ConsulError(`invalid KV key ${JSON.stringify(key)}: no leading '/', '//' or '.'/'..' segments`);
  }
}

export function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

export function toEntry(row: z.infer<typeof KvRow>): KvEntry {
  return {
    key: row.Key,
    value: row.Value === null ? Buffer.alloc(0) : Buffer.from(row.Value, "base64"),
    modifyIndex: row.ModifyIndex,
    createIndex: row.CreateIndex,
    flags: row.Flags,
    session: row.Session,
  };
}

/**
 * An answer's body, checked against its schema. `addr` (where it came from) is named in the error:
 * a body that is not JSON at all means something other than Consul answers there (exit 3).
 */
export function parseJson<T>(
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  body: Buffer,
  what: string,
  addr?: string,
): T {
  const who = addr ? `Consul at ${addr}` : "Consul";
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString("utf8"));
  } catch {
    const text = oneLine(body, 60);
    const quoted = text ? ` (${JSON.stringify(text)})` : "";
    throw new ConsulUnreachableError(
      `${addr ? `The server at ${addr}` : "Consul"} answered ${what} with something that is not JSON${quoted}: is it a Consul agent's HTTP API?`,
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success)
    throw new ConsulError(
      `${who} answered ${what} unexpectedly: ${parsed.error.issues[0]?.message ?? "schema mismatch"}`,
    );
  return parsed.data;
}

export function checkPrefix(prefix: string): void {
  if (!prefix.endsWith("/"))
    throw new ConsulError(
      `KV prefix ${JSON.stringify(prefix)} must end in '/' (Consul prefix operations are string prefixes)`,
    );
  checkKey(prefix.slice(0, -1) || "x");
}

export function waitMs(wait: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(wait);
  if (!m) return 60_000;
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000;
}

/** A row of /v1/session/info/<id> (1.8: Checks; 1.10+: NodeChecks and ServiceChecks too). */
export const SessionRow = z.object({
  ID: z.string(),
  Node: z.string(),
  Checks: z.array(z.string()).nullish(),
  NodeChecks: z.array(z.string()).nullish(),
  ServiceChecks: z.array(z.object({ ID: z.string() })).nullish(),
  TTL: z.string().nullish(),
});

export interface SessionInfo {
  id: string;
  node: string;
  /** the IDs of every health check bound to the session (node and service checks) */
  checks: string[];
  ttl: string;
}

/** The error for an answer other than the one expected; `needs`: the permission the request takes. */
export function answerError(addr: string, what: string, res: RawResponse, needs: string): Error {
  const text = oneLine(res.body);
  if (res.status === 403 || /permission denied|ACL not found/i.test(text))
    return new ConsulPermissionError(
      `${what}: Consul's ACLs refused the token (${text || "permission denied"}); it needs ${needs}`,
      res.status,
    );
  if (res.status === 413)
    return new ValueTooLargeError(`${what}: value too large for Consul (413, limit 512 KiB)`, 413);
  // not Consul's answers to the paths Houston asks about (its 404s — a KV read, a session, a check
  // it forgot — are handled by those calls before)
  if ([404, 405, 501].includes(res.status)) return notConsul(addr, what, res);
  return new ConsulError(`${what}: Consul at ${addr} answered ${res.status}${text ? ` (${text})` : ""}`, res.status);
}

/** Something other than Consul's API answered at `addr` (exit 3). */
export function notConsul(addr: string, what: string, res: RawResponse): ConsulUnreachableError {
  const text = oneLine(res.body);
  return new ConsulUnreachableError(
    `The server at ${addr} answered ${what} with ${res.status}${text ? ` (${text})` : ""}: is it a Consul agent's HTTP API?`,
  );
}

/** A response body on one line (an error body may span lines: a proxy's page), at most `max` characters. */
function oneLine(body: Buffer, max = 300): string {
  const whole = body.toString("utf8").replace(/\s+/g, " ").trim();
  return whole.length > max ? `${whole.slice(0, max)}…` : whole;
}
