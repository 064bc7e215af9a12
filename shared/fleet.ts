/**
 * The one fleet edge: fleet's HTTP API v1 (fleetd v1.0), over its unix socket
 * (unix:///var/run/fleet.sock, the default) or http(s)://host:port, as the seed accepted.
 * Everything fleet answers is validated; its quirks, as measured with the real fleetd
 * (../shared/fleet/README.md), are handled here and nowhere else:
 *  - empty collections are `{}`; lists are paged with nextPageToken;
 *  - errors are {"error":{"code","message"}}; 503 until fleetd has registered in etcd (and while
 *    etcd is away) and a dropped connection are transient (FleetUnavailableError), retried with
 *    backoff by `retrying`;
 *  - a PUT of changed options replaces the unit (201), the same options answer 204;
 *  - GET /state/NAME is undocumented and drops the connection: only the list is used;
 *  - global units show no machineID in /units: their truth is in /state.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { z } from "zod";
import { Backoff, sleep } from "./backoff.js";
import { HoustonError } from "./errors.js";
import { parseUnitFile, type UnitFile } from "./unit-file.js";

export class FleetError extends HoustonError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
/** fleetd not registered yet, etcd away, or the connection dropped: try again later */
export class FleetUnavailableError extends FleetError {}

const UnitOption = z.object({ section: z.string(), name: z.string(), value: z.string() });
export type UnitOption = z.infer<typeof UnitOption>;
const DesiredState = z.enum(["inactive", "loaded", "launched"]);
export type FleetDesiredState = z.infer<typeof DesiredState>;

const FleetMachine = z.object({
  id: z.string(),
  metadata: z.record(z.string()).optional(),
  primaryIP: z.string().optional(),
});
export type FleetMachine = z.infer<typeof FleetMachine>;
const FleetUnit = z.object({
  name: z.string(),
  options: z.array(UnitOption).optional(),
  desiredState: DesiredState,
  currentState: DesiredState.optional(),
  machineID: z.string().optional(),
});
export type FleetUnit = z.infer<typeof FleetUnit>;
const FleetUnitState = z.object({
  name: z.string(),
  hash: z.string().optional(),
  machineID: z.string(),
  systemdLoadState: z.string().optional(),
  systemdActiveState: z.string().optional(),
  systemdSubState: z.string().optional(),
});
export type FleetUnitState = z.infer<typeof FleetUnitState>;
const ErrorBody = z.object({ error: z.object({ code: z.number(), message: z.string() }) });

/** A unit file as fleet's options, in file order ([X-Fleet] kept verbatim). */
export function unitOptions(text: string, source: string): UnitOption[] {
  const unit: UnitFile = parseUnitFile(text, source);
  return unit.sections.flatMap((s) => s.entries.map((e) => ({ section: s.name, name: e.key, value: e.value })));
}

/** Same options in the same order: fleet would answer 204 and leave the unit alone. */
export function sameOptions(a: UnitOption[], b: UnitOption[]): boolean {
  return (
    a.length === b.length &&
    a.every((o, i) => o.section === b[i]?.section && o.name === b[i]?.name && o.value === b[i]?.value)
  );
}

/** how long a fleet request may go unanswered, and how often a wait for one is said meanwhile */
const FLEET_TIMEOUT_MS = 30_000;
const FLEET_SLOW_EVERY_MS = 10_000;

export class Fleet {
  private readonly socketPath: string | null;
  private readonly base: URL | null;

  constructor(
    readonly endpoint: string = "unix:///var/run/fleet.sock",
    /** called every 10 s while a request is unanswered (what, waited so far, when it gives up) */
    private readonly onSlow?: (what: string, waitedMs: number, limitMs: number) => void,
    private readonly slowEveryMs = FLEET_SLOW_EVERY_MS,
  ) {
    if (endpoint.startsWith("unix://")) {
      this.socketPath = endpoint.slice("unix://".length);
      this.base = null;
      if (!this.socketPath.startsWith("/"))
        throw new FleetError(`fleet endpoint ${endpoint}: a unix socket path must be absolute`, 0);
    } else {
      let u: URL;
      try {
        u = new URL(endpoint);
      } catch {
        throw new FleetError(
          `fleet endpoint ${JSON.stringify(endpoint)} is not a URL (http(s)://host:port or unix:///path)`,
          0,
        );
      }
      if (u.protocol !== "http:" && u.protocol !== "https:")
        throw new FleetError(`fleet endpoint ${endpoint}: expected http, https or unix`, 0);
      this.socketPath = null;
      this.base = u;
    }
  }

  async machines(): Promise<FleetMachine[]> {
    return this.list("machines", "machines", FleetMachine);
  }

  async units(): Promise<FleetUnit[]> {
    return this.list("units", "units", FleetUnit);
  }

  /** One unit, or null when fleet has none of that name. */
  async unit(name: string): Promise<FleetUnit | null> {
    const res = await this.call("GET", `units/${encodeURIComponent(name)}`);
    if (res.status === 404) return null;
    this.check(res, `GET unit ${name}`);
    return parse(FleetUnit, res.body, `unit ${name}`);
  }

  /** Creates or replaces a unit with these options; "unchanged" when fleet had the same (204). */
  async putUnit(
    name: string,
    options: UnitOption[],
    desiredState: FleetDesiredState,
  ): Promise<"created" | "unchanged"> {
    const res = await this.call("PUT", `units/${encodeURIComponent(name)}`, { name, desiredState, options });
    this.check(res, `PUT unit ${name}`);
    return res.status === 201 ? "created" : "unchanged";
  }

  /** Destroys a unit; false when fleet had none of that name. */
  async destroyUnit(name: string): Promise<boolean> {
    const res = await this.call("DELETE", `units/${encodeURIComponent(name)}`);
    if (res.status === 404) return false;
    this.check(res, `DELETE unit ${name}`);
    return true;
  }

  /** What fleet's agents report: every unit on every machine (global units included). */
  async states(): Promise<FleetUnitState[]> {
    return this.list("state", "states", FleetUnitState);
  }

  private async list<T>(path: string, key: string, item: z.ZodType<T, z.ZodTypeDef, unknown>): Promise<T[]> {
    const out: T[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const res = await this.call("GET", token ? `${path}?nextPageToken=${encodeURIComponent(token)}` : path);
      this.check(res, `GET ${path}`);
      // empty collections are `{}`
      const body = parse(z.object({ nextPageToken: z.string().optional() }).catchall(z.unknown()), res.body, path);
      out.push(...parse(z.array(item), Buffer.from(JSON.stringify(body[key] ?? [])), path));
      token = body.nextPageToken;
      if (!token) return out;
    }
    throw new FleetError(`GET ${path}: fleet kept paging`, 0);
  }

  private check(res: { status: number; body: Buffer }, what: string): void {
    if (res.status >= 200 && res.status < 300) return;
    const err = ErrorBody.safeParse(safeJson(res.body));
    const message = err.success ? err.data.error.message : res.body.toString("utf8").trim().slice(0, 200) || "no body";
    const text = `fleet ${what}: ${res.status} ${message}`;
    // 503 until fleetd has registered; an empty 500 while its etcd is away: both pass
    if (res.status === 503 || res.status === 500) throw new FleetUnavailableError(text, res.status);
    throw new FleetError(text, res.status);
  }

  private call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Buffer }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = payload
      ? { "Content-Type": "application/json", "Content-Length": String(payload.length) }
      : {};
    const where = this.socketPath ?? this.base?.href ?? "";
    const t0 = Date.now();
    const slow = this.onSlow;
    const ticker = slow
      ? setInterval(() => slow(`${method} ${path}`, Date.now() - t0, FLEET_TIMEOUT_MS), this.slowEveryMs)
      : null;
    const done = (): void => {
      if (ticker) clearInterval(ticker);
    };
    return new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const onResponse = (res: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", (e) =>
          reject(new FleetUnavailableError(`fleet ${method} ${path} at ${where}: ${e.message}`, 0)),
        );
      };
      const opts = { method, headers, timeout: FLEET_TIMEOUT_MS };
      const req = this.socketPath
        ? httpRequest({ ...opts, socketPath: this.socketPath, path: `/fleet/v1/${path}` }, onResponse)
        : (this.base?.protocol === "https:" ? process.getBuiltinModule("node:https").request : httpRequest)(
            new URL(`fleet/v1/${path}`, withSlash(this.base)),
            opts,
            onResponse,
          );
      req.on("timeout", () => req.destroy(new Error(`timed out after ${FLEET_TIMEOUT_MS / 1000} s`)));
      // fleetd drops the connection for some requests (and while it restarts): transient
      req.on("error", (e) => reject(new FleetUnavailableError(`fleet ${method} ${path} at ${where}: ${e.message}`, 0)));
      req.end(payload);
    }).finally(done);
  }
}

/** Runs `fn`, retrying transient fleet errors with backoff until `deadline` (then the last error). */
export async function retrying<T>(fn: () => Promise<T>, deadline: number, signal?: AbortSignal): Promise<T> {
  const backoff = new Backoff({ minMs: 250, maxMs: 5000 });
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof FleetUnavailableError) || Date.now() >= deadline || signal?.aborted) throw err;
      await sleep(Math.min(backoff.next(), Math.max(0, deadline - Date.now())), signal);
    }
  }
}

function withSlash(u: URL | null): URL {
  const base = new URL(u?.href ?? "http://localhost/");
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return base;
}

function safeJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString("utf8"));
  } catch {
    return null;
  }
}

function parse<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, body: Buffer, what: string): T {
  const r = schema.safeParse(safeJson(body));
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FleetError(
      `fleet ${what}: unexpected answer (${issue?.path.join(".") ?? ""} ${issue?.message ?? ""})`,
      0,
    );
  }
  return r.data;
}
