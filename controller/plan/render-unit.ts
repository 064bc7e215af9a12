/**
 * Pure edits the planner makes to a unit: chaining dependencies, rewriting references to other
 * units of the run, dropping group placement, and reading Houston's own [X-Houston] section.
 */
import { ConfigError } from "../../shared/errors.js";
import {
  AUTO_PORT_RANGE,
  ServiceDeclSchema,
  checkTargetProblem,
  checkUrlOf,
  serviceNameProblem,
  type ServiceDecl,
} from "../../shared/spec.js";
import { entries, splitWords, type UnitFile } from "../../shared/unit-file.js";
import { parseWindowSeconds, WINDOW_EXPECTED } from "./watch-window.js";

/** The keys of [X-Houston] (docs/configuration.md); any other is a typo that would silently do nothing. */
export const HOUSTON_KEYS: readonly string[] = [
  "Instances",
  "ServicePort",
  "ServiceName",
  "ServiceCheckHTTP",
  "ServiceCheckInterval",
  "Socket",
  "MinHealthy",
  "Upgrade",
];

/**
 * Checks what [X-Houston] says that is not read until later: every key is one Houston knows, and
 * MinHealthy= (read by the rollout's watch) is whole seconds in range. Errors name source:line.
 */
export function checkHoustonSection(unit: UnitFile, source: string): void {
  for (const e of unit.sections.filter((s) => s.name === "X-Houston").flatMap((s) => s.entries))
    if (!HOUSTON_KEYS.includes(e.key))
      throw new ConfigError(source, `[X-Houston] ${e.key}=: unknown key (known: ${HOUSTON_KEYS.join(", ")})`, e.line);
  const window = entries(unit, "X-Houston", "MinHealthy").at(-1);
  if (window && parseWindowSeconds(window.value) === null)
    throw new ConfigError(source, `[X-Houston] MinHealthy=${window.value}: ${WINDOW_EXPECTED}`, window.line);
}

/** Adds Requires=/After= on `previous` (after Description, as the seed did), unless already there. */
export function addDependency(unit: UnitFile, previous: string, need: "Requires" | "Wants" = "Requires"): void {
  let section = unit.sections.find((s) => s.name === "Unit");
  if (!section) {
    section = { name: "Unit", entries: [] };
    unit.sections.unshift(section);
  }
  const has = (key: string): boolean =>
    section.entries.some((e) => e.key === key && splitWords(e.value).includes(previous));
  const add = [need, "After"].filter((k) => !has(k)).map((key) => ({ key, value: previous }));
  if (add.length === 0) return;
  const at = section.entries.findIndex((e) => e.key === "Description");
  section.entries.splice(at === -1 ? section.entries.length : at + 1, 0, ...add);
}

/** Rewrites `memcached.service` → `example-memcached@1.4.24.service` for units of this run. */
export function rewriteReferences(unit: UnitFile, names: ReadonlyMap<string, string>): void {
  if (names.size === 0) return;
  const alternatives = [...names.keys()]
    .sort((a, b) => b.length - a.length)
    .map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(?<![A-Za-z0-9_.@:-])(${alternatives.join("|")})(?![A-Za-z0-9_.@-])`, "g");
  for (const section of unit.sections) {
    for (const e of section.entries) e.value = e.value.replace(re, (m) => names.get(m) ?? m);
  }
}

/** Without a group, `group=…` placement is dropped (the seed's behaviour). */
export function dropGroupMetadata(unit: UnitFile): void {
  for (const section of unit.sections.filter((s) => s.name === "X-Fleet")) {
    section.entries = section.entries.flatMap((e) => {
      if (e.key !== "MachineMetadata") return [e];
      const words = splitWords(e.value).filter((w) => !w.startsWith("group="));
      return words.length ? [{ ...e, value: words.map((w) => (/\s/.test(w) ? `"${w}"` : w)).join(" ") }] : [];
    });
  }
}

/**
 * [X-Houston] ServicePort= (required for a service: a port, `auto`, or a range FROM-TO),
 * ServiceName=, ServiceCheckHTTP=, ServiceCheckInterval=: the agent registers the unit as a Consul
 * service with these. With `auto` or a range the agent chooses each version's port on each host
 * (agent/ports.ts). A bad value names source:line.
 */
export function serviceDeclOf(
  unit: UnitFile,
  stack: string,
  component: string | null,
  source: string,
): ServiceDecl | undefined {
  const defaultName = component ? `${stack}-${component}` : stack;
  const last = (key: string) => entries(unit, "X-Houston", key).at(-1);
  const one = (key: string): string | undefined => last(key)?.value;
  const portEntry = last("ServicePort");
  if (portEntry === undefined) {
    const stray = last("ServiceName") ?? last("ServiceCheckHTTP");
    if (stray) throw new ConfigError(source, "[X-Houston] declares a service without ServicePort=", stray.line);
    return undefined;
  }
  const port = servicePortOf(portEntry.value.trim());
  if (typeof port === "string")
    throw new ConfigError(source, `[X-Houston] ServicePort=${portEntry.value}: ${port}`, portEntry.line);
  const parsed = ServiceDeclSchema.safeParse({
    name: one("ServiceName") ?? defaultName,
    ...port,
    checkHttp: one("ServiceCheckHTTP"),
    interval: one("ServiceCheckInterval"),
  });
  const keyOf = (path: readonly PropertyKey[]): string =>
    path[0] === "name"
      ? "ServiceName"
      : path[0] === "checkHttp"
        ? "ServiceCheckHTTP"
        : path[0] === "interval"
          ? "ServiceCheckInterval"
          : "ServicePort";
  const lineOf = (path: readonly PropertyKey[]): number | undefined => last(keyOf(path))?.line;
  if (!parsed.success) {
    // named as written in the unit (ServiceCheckInterval=abc), not as the spec's field (interval)
    const issue = parsed.error.issues[0];
    const key = keyOf(issue?.path ?? []);
    const detail =
      key === "ServiceCheckInterval" ? "expected a duration such as 2s, 500ms or 1m" : (issue?.message ?? "invalid");
    const written = last(key)?.value;
    // an issue of no one field (the port and the check URL together) says so itself
    const where = issue?.path.length ? `${key}${written !== undefined ? `=${written}` : ""}: ` : "";
    throw new ConfigError(source, `[X-Houston] ${where}${detail}`, lineOf(issue?.path ?? []));
  }
  const url = parsed.data.checkHttp;
  const problem = serviceNameProblem(stack, parsed.data.name);
  if (problem) throw new ConfigError(source, `[X-Houston] ${problem}`, lineOf(["name"]));
  // ${HOUSTON_PORT} filled in with a sample port to check the URL's form; the message quotes it as written
  const filled = url ? checkUrlOf(parsed.data, parsed.data.portRange?.from ?? 1) : null;
  const target = url && filled ? checkTargetProblem(filled)?.replace(filled, url) : null;
  if (target) throw new ConfigError(source, `[X-Houston] ${target}`, lineOf(["checkHttp"]));
  return parsed.data;
}

/**
 * ServicePort='s value: a fixed port, `auto` (AUTO_PORT_RANGE), or a range FROM-TO; a string says
 * why the value is refused.
 */
export function servicePortOf(value: string): { port: number } | { portRange: { from: number; to: number } } | string {
  const valid = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (value === "auto") return { portRange: { ...AUTO_PORT_RANGE } };
  if (/^\d+$/.test(value)) {
    const port = Number(value);
    return valid(port) ? { port } : "a port is a number from 1 to 65535";
  }
  const m = /^(\d+)-(\d+)$/.exec(value);
  if (!m) return "expected a port (8080), auto, or a range (20000-20999)";
  const from = Number(m[1]);
  const to = Number(m[2]);
  if (!valid(from) || !valid(to)) return "a port is a number from 1 to 65535";
  if (from > to) return `the range runs from low to high (${to}-${from})`;
  return { portRange: { from, to } };
}
