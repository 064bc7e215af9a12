/**
 * Everything Houston stores in Consul KV, as zod schemas: the desired stack spec (controller →
 * agents), archive metadata, agent records and status reports (agents → controller), history.
 * Every read goes through decodeJson, so a bad value is an error naming its key.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { InvalidKvDataError } from "./errors.js";
import { PlacementSchema } from "./placement.js";
import {
  GROUP_RE,
  NAME_RE,
  UnitNameSchema,
  VERSION_RE,
  legacyUnitName,
  unitName,
  type UnitNameParts,
} from "./unit-name.js";

function hostOf(url: string): string {
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  } catch {
    return "";
  }
}

export const SCHEMA_VERSION = 1;

const Name = z.string().regex(NAME_RE, "invalid name");
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "not a sha256 hex digest");

/** Why a check URL is malformed (not http(s), credentials in it), or null; says nothing of its host. */
function checkUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `check URL ${JSON.stringify(url)} is not a URL`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return `check URL ${url} must be http or https`;
  if (u.username || u.password) return `check URL ${url} must not carry credentials`;
  return null;
}

/**
 * Where a service's HTTP check may point: Consul's agent on every host fetches it, so it must be
 * the host itself. `ownAddresses` are the host's own addresses (known to the agent only); without
 * them only loopback is allowed. Returns why a URL is refused, or null.
 */
export function checkTargetProblem(url: string, ownAddresses: ReadonlySet<string> = new Set()): string | null {
  const malformed = checkUrlProblem(url);
  if (malformed) return malformed;
  const host = hostOf(url);
  const loopback = host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
  if (loopback || ownAddresses.has(host)) return null;
  return `check URL ${url} must target this host (loopback${ownAddresses.size ? " or one of its own addresses" : ""}), not ${host}`;
}

/** The Consul service every agent registers itself as (a TTL check the agent passes itself). */
export const AGENT_SERVICE = "houston-agent";

/** The tags a declared service carries, and that a rollout waits for: one rule for both sides. */
export function serviceTags(version: string, group: string | null): string[] {
  return [`version:${version}`, ...(group ? [`deploy:${group}`] : [])];
}

/** The Consul service names a stack may register: its own name or `<stack>-…`, never Houston's or Consul's. */
export function serviceNameProblem(stack: string, name: string): string | null {
  if (name === AGENT_SERVICE || name === "consul") return `service name ${name} is reserved`;
  if (name === stack || name.startsWith(`${stack}-`)) return null;
  return `service name ${name} is not stack ${stack}'s to register (use ${stack} or ${stack}-<name>)`;
}

/** `${HOUSTON_PORT}` in a check URL: the port the agent chose for the version ([X-Houston] ServicePort=auto or a range) */
export const PORT_PLACEHOLDER = "${HOUSTON_PORT}";
/** ServicePort=auto: the range the agent chooses a version's port from (below Linux's ephemeral ports, 32768 on) */
export const AUTO_PORT_RANGE = { from: 20000, to: 29999 } as const;

const Port = z.number().int().min(1).max(65535);

export const ServiceDeclSchema = z
  .object({
    name: Name,
    /** a fixed port; absent when the agent chooses one from `portRange` */
    port: Port.optional(),
    /** ServicePort=auto or FROM-TO: each version on each host gets a free port of these (agent/ports.ts) */
    portRange: z
      .object({ from: Port, to: Port })
      .refine((r) => r.from <= r.to, "port range must run from low to high")
      .optional(),
    /**
     * URL Consul polls; default http://127.0.0.1:<port>/; the host itself only (see
     * checkTargetProblem); with a port range its port is written ${HOUSTON_PORT}
     */
    checkHttp: z
      .string()
      .refine(
        (u) => isIP(hostOf(fillPort(u))) !== 0 || hostOf(fillPort(u)) === "localhost",
        "check URL must name this host by address (loopback or its own)",
      )
      .optional(),
    interval: z
      .string()
      .regex(/^\d+(ms|s|m)$/)
      .default("2s"),
  })
  .superRefine((s, ctx) => {
    const problem = servicePortProblem(s);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
export type ServiceDecl = z.infer<typeof ServiceDeclSchema>;

/** A check URL with ${HOUSTON_PORT} filled in with `port` (a sample port, to check its form). */
function fillPort(url: string, port = 1): string {
  return url.split(PORT_PLACEHOLDER).join(String(port));
}

/**
 * Why a service's port and check URL do not fit together, or null: exactly one of a fixed port
 * and a range; with a range, a declared check names its port ${HOUSTON_PORT} (a fixed one would
 * ask whichever version holds it); with a fixed port, ${HOUSTON_PORT} is not set.
 */
export function servicePortProblem(s: {
  port?: number;
  portRange?: { from: number; to: number };
  checkHttp?: string;
}): string | null {
  if ((s.port === undefined) === (s.portRange === undefined))
    return "a service has either a fixed port or a port range (ServicePort=auto), not both or neither";
  const named = s.checkHttp?.includes(PORT_PLACEHOLDER) ?? false;
  if (s.portRange && s.checkHttp !== undefined && !named)
    return `check URL ${s.checkHttp} must name its port ${PORT_PLACEHOLDER} with ServicePort=auto or a range (each version has its own port)`;
  if (s.port !== undefined && named)
    return `check URL ${s.checkHttp}: ${PORT_PLACEHOLDER} is only set with ServicePort=auto or a range (this service's port is ${s.port})`;
  return null;
}

/** The URL Consul's check asks for a service serving on `port`: the declared one (its ${HOUSTON_PORT} filled in), or / on loopback. */
export function checkUrlOf(s: Pick<ServiceDecl, "checkHttp">, port: number): string {
  return s.checkHttp !== undefined ? fillPort(s.checkHttp, port) : `http://127.0.0.1:${port}/`;
}

export const UnitRoleSchema = z.enum(["archive", "dependency", "service", "global", "socket", "socket-guard"]);
export type UnitRole = z.infer<typeof UnitRoleSchema>;

export const UnitSpecSchema = z.object({
  name: UnitNameSchema,
  stack: Name,
  component: Name.nullable(),
  group: z.string().regex(GROUP_RE).nullable(),
  version: z.string().regex(VERSION_RE),
  role: UnitRoleSchema,
  text: z.string().min(1),
  /** any-of: the unit belongs on a host if one of these matches its metadata */
  placements: z.array(PlacementSchema).min(1),
  /** role "archive": the digest of the file archive this unit stands for */
  archive: Sha256.optional(),
  service: ServiceDeclSchema.optional(),
  /** rollout batches and canaries: when set, only these nodes (that also match placements) run it */
  hosts: z.array(z.string()).optional(),
  /**
   * how a new version of this unit takes over from the old (the planner's choice, see
   * controller/plan/strategy.ts): "replace": stop the old, then start the new, host by host
   * (absent: side by side, the old removed after confirmation)
   */
  upgrade: z.literal("replace").optional(),
  /**
   * a unit of a service deployment with no placement of its own: it runs where the deployment's
   * service runs, on every machine that runs one of its instances (shared/schedule.ts, follows)
   */
  together: z.literal(true).optional(),
  /**
   * set by a rollout on a "replace" unit: the live units it replaces. On a host where both would
   * run, the agent stops and removes these before it starts this one (agent/reconcile.ts)
   */
  replaces: z.array(UnitNameSchema).optional(),
  /**
   * set by a rollout on the units it deploys: the unit's window in seconds (how long it must stay
   * active before the rollout counts it as up; controller/plan/watch-window.ts). The agent says
   * in its report when the unit has been active that long on the host's own clock (`stood`).
   */
  window: z.number().min(0).max(86_400).optional(),
});
export type UnitSpec = z.infer<typeof UnitSpecSchema>;

export const DeploymentSchema = z.object({
  type: z.enum(["global", "standalone", "service"]),
  name: Name,
  version: z.string().nullable(),
  group: z.string().nullable(),
});
export type Deployment = z.infer<typeof DeploymentSchema>;

export const StackSpecSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION, {
      errorMap: () => ({ message: `unknown schema version (this Houston reads ${SCHEMA_VERSION})` }),
    }),
    stack: Name,
    /** a safe integer: generations are compared and incremented (1e300 + 1 is 1e300) */
    generation: z.number().int().safe().min(1),
    environment: z.string(),
    deployment: DeploymentSchema,
    createdAt: z.string(),
    units: z.array(UnitSpecSchema),
    /** "fleet": fleetd places and starts the units (agent/fleet-mirror.ts); absent: the agents */
    scheduler: z.enum(["agents", "fleet"]).optional(),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    for (const u of spec.units) {
      if (seen.has(u.name)) ctx.addIssue({ code: "custom", message: `unit ${u.name} listed twice` });
      seen.add(u.name);
      // a stack can only name its own units: the name is exactly what its parts render to
      if (u.stack !== spec.stack)
        ctx.addIssue({ code: "custom", message: `unit ${u.name} belongs to stack ${u.stack}, not ${spec.stack}` });
      const kind: UnitNameParts["kind"] = u.role === "socket" || u.role === "socket-guard" ? u.role : "versioned";
      const parts = { stack: spec.stack, component: u.component, group: u.group, version: u.version, kind };
      const rendered = unitName(parts);
      if (u.name !== rendered && u.name !== legacyUnitName(parts))
        ctx.addIssue({
          code: "custom",
          message: `unit ${u.name} is not the name its parts render to in stack ${spec.stack} (${rendered})`,
        });
      if (u.service) {
        const problem =
          serviceNameProblem(spec.stack, u.service.name) ??
          (u.service.checkHttp ? checkUrlProblem(fillPort(u.service.checkHttp)) : null);
        if (problem) ctx.addIssue({ code: "custom", message: `unit ${u.name}: ${problem}` });
      }
      if (u.service?.portRange && spec.scheduler === "fleet")
        ctx.addIssue({
          code: "custom",
          message: `unit ${u.name}: ServicePort=auto or a range needs the agents scheduler (fleet starts its units itself)`,
        });
      if (u.role === "archive" && !u.archive)
        ctx.addIssue({ code: "custom", message: `archive unit ${u.name} has no archive digest` });
    }
  });
export type StackSpec = z.infer<typeof StackSpecSchema>;

export const ArchiveFileSchema = z.object({
  path: z.string(),
  mode: z.number().int().min(0).max(0o7777),
  owner: z.string(),
  group: z.string(),
});
export const ArchiveMetaSchema = z.object({
  schema: z.literal(SCHEMA_VERSION),
  sha256: Sha256,
  size: z.number().int().min(0),
  chunks: z.number().int().min(1),
  files: z.array(ArchiveFileSchema),
});
export type ArchiveMeta = z.infer<typeof ArchiveMetaSchema>;

export const UnitStatusSchema = z.object({
  name: z.string(),
  activeState: z.string(),
  subState: z.string(),
  /** systemd's Service Result, e.g. "exit-code" when failed */
  result: z.string().optional(),
  error: z.string().optional(),
  /** last journal lines when the unit failed or restarted, if the agent could read them */
  log: z.array(z.string()).optional(),
  /** systemd's NRestarts (automatic restarts since the unit was last started); absent from older agents */
  nRestarts: z.number().int().min(0).optional(),
  /** stop then start: the units this one replaced on this host (stopped before it started) */
  replaced: z.array(z.string()).optional(),
  /** ServicePort=auto or a range: the port the agent chose for this unit here (its HOUSTON_PORT) */
  port: z.number().int().min(1).max(65535).optional(),
  /**
   * for a unit whose spec gives it a window: whether, as this report was made, the unit had been
   * active that long without a break (systemd's ActiveEnterTimestampMonotonic against the host's
   * monotonic clock). The agent reports again when a young unit's window ends. Absent from older
   * agents and for units without a window.
   */
  stood: z.boolean().optional(),
});
export type UnitStatus = z.infer<typeof UnitStatusSchema>;

export const StatusReportSchema = z.object({
  schema: z.literal(SCHEMA_VERSION),
  node: z.string(),
  stack: z.string(),
  /** generation the agent has finished applying (null: nothing applied yet) */
  generation: z.number().int().nullable(),
  /** newest generation the agent has seen and works towards (errors relate to it) */
  desiredGeneration: z.number().int().nullable(),
  /** the version the desired generation deploys (a service's; null for global and standalone);
   * optional: agents before it did not say */
  version: z.string().nullable().optional(),
  /** what the desired generation deploys (type, name, version, group); optional, as `version` */
  deployment: DeploymentSchema.optional(),
  /** true while the agent is still working towards `generation`'s successor */
  converging: z.boolean(),
  units: z.array(UnitStatusSchema),
  archives: z.array(z.string()),
  errors: z.array(z.string()),
  /**
   * the spec in KV this agent refused (its generation, null when unreadable) and why; the last
   * good one stays in force. Optional: older agents only say it in `errors`.
   */
  refused: z.object({ generation: z.number().int().nullable(), reason: z.string() }).optional(),
  updatedAt: z.string(),
});
export type StatusReport = z.infer<typeof StatusReportSchema>;

export const AgentRecordSchema = z.object({
  schema: z.literal(SCHEMA_VERSION),
  node: z.string(),
  meta: z.record(z.string()),
  version: z.string(),
  startedAt: z.string(),
  httpAddr: z.string().optional(),
  /** /etc/machine-id, for [X-Fleet] MachineID= */
  machineId: z.string().optional(),
  /** key IDs the agent trusts for signed specs; null (or absent, older agents) when it applies unsigned specs */
  trustedKeys: z.array(z.string()).nullable().optional(),
});
export type AgentRecord = z.infer<typeof AgentRecordSchema>;

export const HistoryRecordSchema = z.object({
  schema: z.literal(SCHEMA_VERSION),
  stack: z.string(),
  generation: z.number().int().safe().min(1),
  environment: z.string(),
  deployment: DeploymentSchema,
  user: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number(),
  /** interrupted: the controller was stopped (Ctrl-C, SIGTERM, SIGHUP) before the rollout ended */
  result: z.enum(["success", "failed", "rolled-back", "removed", "interrupted"]),
  message: z.string(),
  /** the deployment's own units, as deployed (rollback redeploys them) */
  units: z.array(UnitSpecSchema),
  /** the spec generation that was live after this deployment ended */
  finalGeneration: z.number().int().safe().min(1).nullable(),
  /** a success whose units failed after they stood their window (seen by a later command): rollback skips it by default */
  failedLater: z.object({ at: z.string(), unit: z.string(), host: z.string(), reason: z.string() }).optional(),
});
export type HistoryRecord = z.infer<typeof HistoryRecordSchema>;

/** Parse a KV value as JSON and validate it; errors name the key and the first problem. */
export function decodeJson<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, key: string, value: Buffer | string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof value === "string" ? value : value.toString("utf8"));
  } catch (err) {
    throw new InvalidKvDataError(key, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length ? `${issue.path.join(".")}: ` : "";
    throw new InvalidKvDataError(key, `${where}${issue?.message ?? "does not match the schema"}`);
  }
  return parsed.data;
}
