/**
 * A service's units stay together (pure). In a service deployment, a unit with no placement of
 * its own (no Global=, no MachineMetadata= other than the service's, no MachineOf=, MachineID=,
 * Conflicts=, Instances=) runs where the service runs, on every machine that runs one of its
 * instances, like a Nomad task group; a unit with a placement of its own keeps it. How the rule
 * is written depends on the backend (controller/scheduler/unit-rules.ts): Houston's agents follow
 * `together` in the spec; for fleet it is written into [X-Fleet] as fleet users did (MachineOf=
 * the service's unit, or Global=true with the service's metadata).
 *
 * What cannot stay together is said: a Requires=/After= between two units of a stack that land on
 * different machines is dropped there (agent/targeting.ts), so `plan` and the rollout warn,
 * naming both units and machines and how to keep them together.
 */
import type { Placement } from "../../shared/placement.js";
import type { UnitSpec } from "../../shared/spec.js";
import { splitWords, type UnitFile } from "../../shared/unit-file.js";

/** The unit asks for no placement of its own next to the service's (`service`). */
export function hasNoPlacementOfItsOwn(own: Placement, service: Placement): boolean {
  if (own.global || own.machineId || own.machineOf?.length || own.conflicts?.length || (own.instances ?? 1) > 1)
    return false;
  const keys = Object.keys(own.metadata);
  if (keys.length === 0) return true;
  const same = (a: string[] = [], b: string[] = []): boolean => a.length === b.length && a.every((v) => b.includes(v));
  return (
    keys.length === Object.keys(service.metadata).length &&
    keys.every((k) => same(own.metadata[k], service.metadata[k]))
  );
}

/** The [X-Fleet] lines that keep a unit with the service, as fleet understands them. */
export function writeTogetherForFleet(unit: UnitFile, serviceName: string, service: Placement): void {
  let section = unit.sections.find((s) => s.name === "X-Fleet");
  if (!section) {
    section = { name: "X-Fleet", entries: [] };
    unit.sections.push(section);
  }
  section.entries = section.entries.filter((e) => e.key !== "MachineMetadata");
  if (service.global) {
    section.entries.push({ key: "Global", value: "true" });
    for (const [k, vs] of Object.entries(service.metadata))
      section.entries.push({ key: "MachineMetadata", value: vs.map((v) => `${k}=${v}`).join(" ") });
  } else section.entries.push({ key: "MachineOf", value: serviceName });
}

const DEP_KEYS = ["Requires", "After"];

/** The units a unit text names in [Unit] Requires=/After= (a line it cannot read names none). */
function dependenciesOf(text: string): string[] {
  let section = "";
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const head = /^\[(.+)\]$/.exec(line);
    if (head) section = head[1] ?? "";
    const eq = line.indexOf("=");
    if (section !== "Unit" || eq < 0) continue;
    if (DEP_KEYS.includes(line.slice(0, eq).trim())) out.push(...splitWords(line.slice(eq + 1)));
  }
  return out;
}

/**
 * Every Requires=/After= between two units of these that would be dropped because they land on
 * different machines (`hosts`: where each unit goes), as a warning naming both units and machines.
 */
export function droppedDependencies(units: UnitSpec[], hosts: ReadonlyMap<string, string[]>): string[] {
  const names = new Set(units.map((u) => u.name));
  const out: string[] = [];
  for (const u of units) {
    const on = hosts.get(u.name) ?? [];
    const deps = new Set(dependenciesOf(u.text).filter((d) => names.has(d) && d !== u.name));
    for (const d of deps) {
      const there = hosts.get(d) ?? [];
      const without = on.filter((h) => !there.includes(h));
      if (without.length === 0) continue;
      out.push(
        `${u.name} needs ${d} (Requires=/After=), but on ${without.join(", ")} it runs without it (${d} runs on ${there.join(", ") || "no machine"}): the dependency is dropped there. To keep them together, give ${d} no placement of its own, or [X-Fleet] MachineOf=${d} to ${u.name}`,
      );
    }
  }
  return out;
}
