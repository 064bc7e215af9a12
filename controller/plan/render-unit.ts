/**
 * Pure edits the planner makes to a unit: chaining dependencies, rewriting references to other
 * units of the run, dropping group placement, and reading Houston's own [X-Houston] section.
 */
import { ConfigError } from "../../shared/errors.js";
import { ServiceDeclSchema, checkTargetProblem, serviceNameProblem, type ServiceDecl } from "../../shared/spec.js";
import { splitWords, values, type UnitFile } from "../../shared/unit-file.js";

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
 * [X-Houston] ServicePort= (required for a service), ServiceName=, ServiceCheckHTTP=,
 * ServiceCheckInterval=: the agent registers the unit as a Consul service with these.
 */
export function serviceDeclOf(
  unit: UnitFile,
  stack: string,
  component: string | null,
  source: string,
): ServiceDecl | undefined {
  const defaultName = component ? `${stack}-${component}` : stack;
  const one = (key: string): string | undefined => values(unit, "X-Houston", key).at(-1);
  const port = one("ServicePort");
  if (port === undefined) {
    if (one("ServiceName") ?? one("ServiceCheckHTTP"))
      throw new ConfigError(source, "[X-Houston] declares a service without ServicePort=");
    return undefined;
  }
  const parsed = ServiceDeclSchema.safeParse({
    name: one("ServiceName") ?? defaultName,
    port: /^\d+$/.test(port) ? Number(port) : port,
    checkHttp: one("ServiceCheckHTTP"),
    interval: one("ServiceCheckInterval"),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(source, `[X-Houston] ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`);
  }
  const problem =
    serviceNameProblem(stack, parsed.data.name) ??
    (parsed.data.checkHttp ? checkTargetProblem(parsed.data.checkHttp) : null);
  if (problem) throw new ConfigError(source, `[X-Houston] ${problem}`);
  return parsed.data;
}
