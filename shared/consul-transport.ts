/**
 * How Houston reaches Consul: the npm `consul` package's HTTP client (papi: keep-alive agents,
 * TLS options, timeouts, cancellation), wrapped once so that every call answers a plain
 * {status, index, body} and every failure to connect (or an answer that is plainly not Consul's:
 * https on an http port, an error page) is one typed, readable error.
 * TLS is configured as the Consul CLI reads it: CONSUL_CACERT, CONSUL_CLIENT_CERT,
 * CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME (flags override them).
 */
import ConsulClient from "consul";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { Agent as HttpAgent, type IncomingMessage } from "node:http";
import { lookup as dnsLookup } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { ConsulError, ConsulUnreachableError, errorText } from "./errors.js";

export interface TlsOptions {
  /** PEM file of the CA that signed Consul's certificate */
  caFile?: string | undefined;
  /** client certificate and key, for Consul servers that verify incoming clients */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** name to expect on Consul's certificate (default: the address's host) */
  serverName?: string | undefined;
}

export function tlsFromEnv(env: NodeJS.ProcessEnv): TlsOptions {
  const v = (k: string): string | undefined => (env[k] ? env[k] : undefined);
  return {
    caFile: v("CONSUL_CACERT"),
    certFile: v("CONSUL_CLIENT_CERT"),
    keyFile: v("CONSUL_CLIENT_KEY"),
    serverName: v("CONSUL_TLS_SERVER_NAME"),
  };
}

export interface RawResponse {
  status: number;
  index: number;
  body: Buffer;
}

export interface TransportRequest {
  method: string;
  /** path below /v1, with its query string */
  path: string;
  body?: Buffer | undefined;
  headers: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** The part of the package's client we use (its typings do not declare it). */
interface PapiClient {
  _request(
    opts: Record<string, unknown>,
    ...middleware: ((request: PapiRequest, next: (err?: unknown, value?: unknown) => void) => void)[]
  ): Promise<unknown>;
}
interface PapiRequest {
  err?: unknown;
  res?: IncomingMessage & { body?: Buffer };
}

/** Checks and normalises a Consul address: http(s)://host:port, or host:port (http). */
export function parseConsulAddress(addr: string): URL {
  const text = addr.trim();
  if (text === "") throw new ConsulError("the Consul address is empty");
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConsulError(`${JSON.stringify(addr)} is not a Consul address (http(s)://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConsulError(`${addr}: unsupported scheme ${url.protocol.slice(0, -1)} (http or https)`);
  if (url.username || url.password)
    throw new ConsulError(`${addr}: credentials do not belong in the address (use a token)`);
  if (url.hostname === "") throw new ConsulError(`${addr}: no host`);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash)
    throw new ConsulError(`${addr}: a Consul address has no path or query`);
  return url;
}

export function isLoopback(url: URL): boolean {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
}

/**
 * An IPv6 literal reaches the client (and the Host header) in its brackets, `[::1]`, which a name
 * lookup cannot resolve: the agents look up the address without them, and TLS checks the
 * certificate against it without them too.
 */
const unbracket = (host: string): string => host.replace(/^\[(.*)\]$/, "$1");
const lookup: LookupFunction = (host, options, callback) => dnsLookup(unbracket(host), options, callback);

export class ConsulTransport {
  readonly addr: string;
  private readonly client: PapiClient;
  private readonly agent: HttpAgent;

  constructor(url: URL, tls: TlsOptions) {
    this.addr = `${url.protocol}//${url.host}`;
    const read = (file: string | undefined, what: string): Buffer | undefined => {
      if (!file) return undefined;
      try {
        return readFileSync(file);
      } catch (err) {
        throw new ConsulError(`${what} ${file}: ${errorText(err)}`);
      }
    };
    if (url.protocol === "https:") {
      if (Boolean(tls.certFile) !== Boolean(tls.keyFile))
        throw new ConsulError("a client certificate needs its key (CONSUL_CLIENT_CERT with CONSUL_CLIENT_KEY)");
      // node:https (with tls) is loaded only for an https Consul: about 2 MB of the agent's memory
      const { Agent: HttpsAgent } = process.getBuiltinModule("node:https");
      const { checkServerIdentity } = process.getBuiltinModule("node:tls");
      this.agent = new HttpsAgent({
        keepAlive: true,
        lookup,
        checkServerIdentity: (host, cert) => checkServerIdentity(unbracket(host), cert),
        ca: read(tls.caFile, "CA certificate"),
        cert: read(tls.certFile, "client certificate"),
        key: read(tls.keyFile, "client key"),
        servername: tls.serverName,
      });
    } else {
      this.agent = new HttpAgent({ keepAlive: true, lookup });
    }
    this.client = new ConsulClient({
      host: url.hostname,
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
      secure: url.protocol === "https:",
      agent: this.agent,
    }) as unknown as PapiClient;
  }

  async send(req: TransportRequest): Promise<RawResponse> {
    const ctx = new EventEmitter();
    const cancel = (): boolean => ctx.emit("cancel");
    req.signal?.addEventListener("abort", cancel, { once: true });
    try {
      const res = (await this.client._request(
        {
          method: req.method,
          path: req.path,
          headers: req.headers,
          body: req.body,
          timeout: req.timeoutMs,
          buffer: true,
          ctx,
        },
        // every answer that arrived is judged here or by the caller (404, 409, 413 mean things)
        (request, next) => (request.res ? next(false, request.res) : next(request.err ?? new Error("no response"))),
      )) as IncomingMessage & { body?: Buffer };
      if (res.statusCode === 400 && res.body && /HTTP request to an HTTPS server/i.test(res.body.toString())) {
        throw new ConsulUnreachableError(
          `Consul at ${this.addr} serves https, not http: use https://${this.addr.replace(/^http:\/\//, "")} (with CONSUL_CACERT)`,
        );
      }
      // Consul's errors are text/plain, never a page: something else listens there (a 200 is
      // judged by its body: a raw KV value may be guessed as text/html by Consul before 1.8.10)
      const status = res.statusCode ?? 0;
      if ((status < 200 || status > 299) && /^text\/html/i.test(res.headers["content-type"] ?? "")) {
        throw new ConsulUnreachableError(
          `The server at ${this.addr} answered ${req.method} /v1${req.path.split("?")[0]} with an HTML page (HTTP ${res.statusCode}): is it a Consul agent's HTTP API?`,
        );
      }
      const index = Number(res.headers["x-consul-index"] ?? "0");
      return {
        status: res.statusCode ?? 0,
        index: Number.isFinite(index) ? index : 0,
        body: res.body ?? Buffer.alloc(0),
      };
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason ?? err;
      if (err instanceof ConsulUnreachableError) throw err;
      throw new ConsulUnreachableError(
        `Consul at ${this.addr} is unreachable (${req.method} ${req.path.split("?")[0]}): ${describeTransportError(err)}`,
        undefined,
        { cause: err },
      );
    } finally {
      req.signal?.removeEventListener("abort", cancel);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

const TLS_HINTS: [RegExp, string][] = [
  [
    /UNABLE_TO_VERIFY|SELF_SIGNED|CERT_UNTRUSTED|unable to get (local )?issuer/i,
    "its TLS certificate is not signed by a trusted CA (set CONSUL_CACERT or --ca-file to Consul's CA)",
  ],
  [
    /ERR_TLS_CERT_ALTNAME_INVALID|altnames|Hostname\/IP does not match/i,
    "its TLS certificate does not name this address (set CONSUL_TLS_SERVER_NAME or --tls-server-name)",
  ],
  [
    /certificate required|alert number 116|bad certificate|alert 4[0-9]|handshake failure/i,
    "it refused the TLS handshake: it requires a client certificate (CONSUL_CLIENT_CERT/--client-cert and CONSUL_CLIENT_KEY/--client-key)",
  ],
  [
    /EPROTO|wrong version number|packet length too long/i,
    "TLS failed: the address may be plain http (or https where http is served)",
  ],
  [/ECONNRESET|socket hang up/i, "the connection was reset (an https-only Consul answers plain http this way)"],
];

function describeTransportError(err: unknown): string {
  const parts: string[] = [];
  for (
    let e: unknown = err;
    e && parts.length < 4;
    e = typeof e === "object" && "cause" in e ? (e as { cause: unknown }).cause : undefined
  ) {
    if (typeof e === "object" && e !== null) {
      const code = "code" in e ? String((e as { code: unknown }).code) : "";
      // the consul library prefixes "consul: " and Node repeats the code in the message: say it once
      const msg = "message" in e ? String((e as { message: unknown }).message).replace(/^consul: /, "") : "";
      const part = code && msg.includes(code) ? msg : [code, msg].filter(Boolean).join(" ");
      if (part && !parts.some((p) => p.includes(part))) parts.push(part);
    } else parts.push(String(e));
  }
  const text = parts.join(": ") || "no answer";
  if (/timed out|TimeoutError/i.test(text)) return "timed out";
  const hint = TLS_HINTS.find(([re]) => re.test(text)) ?? NET_HINTS.find(([re]) => re.test(text));
  return hint ? `${hint[1]} [${text}]` : text;
}

const NET_HINTS: [RegExp, string][] = [
  [/ECONNREFUSED/, "connection refused: nothing listens there (is the Consul agent running, on this port?)"],
  [/ENOTFOUND|EAI_AGAIN/, "the host name does not resolve"],
  [/EHOSTUNREACH|ENETUNREACH/, "no route to that host"],
  [/ECONNRESET|socket hang up/, "the connection was closed without an answer"],
];
