/**
 * Houston's own state, legible in Consul's UI (pure): per stack this host runs, a Consul service
 * `houston-<stack>` tagged with the deployed version and generation, with one TTL check per unit
 * that mirrors systemd: passing when active, warning while (de)activating or not running yet,
 * critical when failed (the Result and last log lines as the check's output; a unit that replaced
 * another here, stop then start, says which). The agent sends
 * changes when systemd signals them; nothing polls.
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
      `version:${version ?? "none"}`,
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
): { register: StackService | null; update: UnitCheck[]; deregister: string | null } {
  if (!after) return { register: null, update: [], deregister: before ? before.id : null };
  const shape = (s: StackService | null): string =>
    s ? JSON.stringify([s.name, s.tags, s.checks.map((c) => c.id)]) : "";
  // Consul keeps a re-registered check's status and output: new and changed checks are sent, no
  // others (a stack of 200 units re-registered after one was removed sends nothing more)
  const old = new Map((before?.checks ?? []).map((c) => [c.id, c]));
  return {
    register: shape(before) !== shape(after) ? after : null,
    update: after.checks.filter((c) => old.get(c.id)?.status !== c.status || old.get(c.id)?.output !== c.output),
    deregister: null,
  };
}
