/**
 * Houston's own state, legible in Consul's UI (pure): per stack this host runs, a Consul service
 * `houston-<stack>` tagged with the deployed version (a service's) and generation, with one TTL
 * check per unit that mirrors systemd: passing when active, warning while (de)activating or not
 * running yet, critical when failed (the Result and last log lines as the check's output; a unit
 * that replaced another here, stop then start, says which). The agent sends changes when systemd
 * signals them; nothing polls. A unit that leaves the host takes its check with it in the same
 * report; after a restart (or Consul came back) `strays` says which of Houston's registrations on
 * the local Consul agent no longer match anything (never others').
 */
import type { StatusReport, UnitStatus } from "../shared/spec.js";

export interface StackService {
  id: string;
  name: string;
  tags: string[];
  checks: UnitCheck[];
}

export interface UnitCheck {
  id: string;
  unit: string;
  status: "passing" | "warning" | "critical";
  output: string;
}

/** The Consul service name for a stack (never the agent's own `houston-agent`). */
export function stackServiceName(stack: string): string {
  return stack === "agent" ? "houston-stack-agent" : `houston-${stack}`;
}

export function unitCheck(stack: string, u: UnitStatus): UnitCheck {
  const status =
    u.activeState === "active"
      ? "passing"
      : u.activeState === "failed" || u.activeState === "unknown"
        ? "critical"
        : "warning";
  const replaced = u.replaced?.length ? `; replaced ${u.replaced.join(", ")} on this host (stop, then start)` : "";
  const head = `${u.name}: ActiveState=${u.activeState} SubState=${u.subState}${u.result ? ` Result=${u.result}` : ""}${u.error ? ` (${u.error})` : ""}${replaced}`;
  return { id: `houston-unit:${stack}:${u.name}`, unit: u.name, status, output: [head, ...(u.log ?? [])].join("\n") };
}

export function stackService(
  report: Pick<StatusReport, "stack" | "generation" | "desiredGeneration" | "units" | "errors">,
  version: string | null,
): StackService {
  const checks = report.units.map((u) => unitCheck(report.stack, u));
  if (report.errors.length) {
    checks.push({
      id: `houston-stack:${report.stack}:errors`,
      unit: "(agent)",
      status: "critical",
      output: report.errors.join("\n"),
    });
  }
  return {
    id: `houston-stack:${report.stack}`,
    name: stackServiceName(report.stack),
    tags: [
      // a standalone or global stack has no one version (each unit names its own): no tag
      ...(version !== null ? [`version:${version}`] : []),
      `generation:${report.generation ?? "none"}`,
      ...(report.desiredGeneration !== report.generation
        ? [`converging-to:${report.desiredGeneration ?? "none"}`]
        : []),
    ],
    checks,
  };
}

/** What to send to the local Consul agent to go from `before` to `after` (null: no service). */
export function serviceChanges(
  before: StackService | null,
  after: StackService | null,
): { register: StackService | null; update: UnitCheck[]; deregister: string | null; dropChecks: string[] } {
  if (!after) return { register: null, update: [], deregister: before ? before.id : null, dropChecks: [] };
  const shape = (s: StackService | null): string =>
    s ? JSON.stringify([s.name, s.tags, s.checks.map((c) => c.id)]) : "";
  // Consul keeps a re-registered check's status and output: new and changed checks are sent, no
  // others (a stack of 200 units re-registered after one was removed sends nothing more)
  const old = new Map((before?.checks ?? []).map((c) => [c.id, c]));
  // a unit that left takes its check along: Consul 1.8 drops a check left out of a re-registration,
  // deregistered explicitly all the same (cheap; no reliance on that)
  const now = new Set(after.checks.map((c) => c.id));
  return {
    register: shape(before) !== shape(after) ? after : null,
    update: after.checks.filter((c) => old.get(c.id)?.status !== c.status || old.get(c.id)?.output !== c.output),
    deregister: null,
    dropChecks: [...old.keys()].filter((id) => !now.has(id)),
  };
}

/** What the local Consul agent has registered (GET /v1/agent/services and /v1/agent/checks). */
export interface Registered {
  services: { id: string; meta: Record<string, string> }[];
  checks: { id: string; serviceId: string }[];
}

/** A stack's service ID (registrar) and the prefix of units' declared services' IDs (agent/reconcile.ts serviceIdFor). */
const STACK_SERVICE = "houston-stack:";
const DECLARED_SERVICE = "houston:";

/**
 * Houston's registrations on the local Consul agent that match nothing this agent runs: stack
 * services (`houston-stack:<stack>`, Meta houston_stack) not wanted, checks of a wanted stack
 * service that it no longer has, and — when `declared` is given (no pass is registering one
 * meanwhile) — units' declared services (`houston:<unit>`, Meta houston_unit) the agent does not
 * know. Only registrations carrying Houston's Meta are considered: anything else on the agent
 * (the houston-agent service, other tools' services) is never touched.
 */
export function strays(
  registered: Registered,
  wanted: readonly StackService[],
  declared: ReadonlySet<string> | null,
): { services: string[]; checks: string[] } {
  const want = new Map(wanted.map((s) => [s.id, new Set(s.checks.map((c) => c.id))]));
  const services: string[] = [];
  for (const s of registered.services) {
    const stackService = s.id.startsWith(STACK_SERVICE) && s.meta.houston_stack !== undefined;
    const unitService =
      s.id.startsWith(DECLARED_SERVICE) && s.meta.houston_unit !== undefined && s.meta.houston_stack !== undefined;
    if (stackService && !want.has(s.id)) services.push(s.id);
    else if (unitService && declared && !declared.has(s.id)) services.push(s.id);
  }
  const gone = new Set(services);
  const checks = registered.checks
    .filter((c) => !gone.has(c.serviceId) && want.has(c.serviceId) && !want.get(c.serviceId)?.has(c.id))
    .map((c) => c.id);
  return { services: services.sort(), checks: checks.sort() };
}
