/**
 * The base of the one Consul edge (consul.ts): how a request goes out (token, query, timeouts in
 * proportion to the body, a notice every 10 s while it has no answer) and how an answer that is not
 * Consul's, or is an error, becomes one. consul.ts adds the typed calls.
 */
import type { z } from "zod";
import { ConsulTransport, parseConsulAddress, tlsFromEnv, type RawResponse } from "./consul-transport.js";
import { answerError, notConsul, parseJson, type ConsulOptions } from "./consul-wire.js";

/** how often a request still without an answer is said (ConsulOptions.onSlow) */
export const SLOW_NOTICE_MS = 10_000;

/** The HTTP plumbing every Consul call shares: address, token, timeouts, slow notices, errors. */
export class ConsulBase {
  readonly addr: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly onSlow: ConsulOptions["onSlow"];
  private readonly slowNoticeMs: number;
  private readonly transport: ConsulTransport;

  constructor(opts: ConsulOptions = {}) {
    const url = parseConsulAddress(opts.addr ?? (process.env.CONSUL_HTTP_ADDR || "http://127.0.0.1:8500"));
    this.transport = new ConsulTransport(url, opts.tls ?? tlsFromEnv(process.env));
    this.addr = this.transport.addr;
    this.token = opts.token ?? (process.env.CONSUL_HTTP_TOKEN || undefined);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.onSlow = opts.onSlow;
    this.slowNoticeMs = opts.slowNoticeMs ?? SLOW_NOTICE_MS;
  }

  /** An answer's body, checked against its schema; an error names this agent's address. */
  json<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, body: Buffer, what: string): T {
    return parseJson(schema, body, what, this.addr);
  }

  /** Closes idle keep-alive connections (a CLI run ends sooner). */
  close(): void {
    this.transport.close();
  }

  async request(
    method: string,
    path: string,
    opts: {
      query?: Record<string, string | number | boolean | undefined>;
      body?: Buffer | string;
      signal?: AbortSignal;
      timeoutMs?: number;
    } = {},
  ): Promise<RawResponse> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined || v === false) continue;
      params.set(k, v === true ? "" : String(v));
    }
    const query = params.toString();
    const headers: Record<string, string> = {};
    if (this.token) headers["X-Consul-Token"] = this.token;
    const body = typeof opts.body === "string" ? Buffer.from(opts.body) : opts.body;
    // large writes get time in proportion (a loaded machine is slow, not broken): +1 s per 64 KiB
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs + Math.ceil((body?.length ?? 0) / 65_536) * 1000;
    const started = Date.now();
    const onSlow = this.onSlow;
    // a blocking query (wait=) is meant to wait: only the others are slow
    const slow =
      onSlow && opts.query?.wait === undefined
        ? setInterval(() => onSlow(`${method} ${path}`, Date.now() - started, timeoutMs), this.slowNoticeMs)
        : undefined;
    slow?.unref();
    try {
      return await this.transport.send({
        method,
        path: `${path.replace(/^\/v1/, "")}${query ? `?${query}` : ""}`,
        headers,
        body,
        timeoutMs,
        signal: opts.signal,
      });
    } finally {
      clearInterval(slow);
    }
  }

  protected fail(what: string, res: RawResponse, needs: string): never {
    throw answerError(this.addr, what, res, needs);
  }

  /** A KV read's 404: nothing there, as Consul says it (with X-Consul-Index, always ≥ 1). */
  protected kvMissing(what: string, res: RawResponse): boolean {
    if (res.status !== 404) return false;
    if (res.index === 0) throw notConsul(this.addr, what, res);
    return true;
  }
}
