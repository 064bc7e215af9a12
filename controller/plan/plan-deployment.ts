/**
 * The planner: (loaded config inputs, deployment request) → the ordered units and archives of one
 * deployment. Pure: no I/O, same input → same output (archives included).
 *
 * Order: file archive first (for global deployments: after the global units), then the
 * dependencies in manifest order, then the service. A service's dependencies with no placement of
 * their own go where the service goes (controller/plan/together.ts). Each unit Requires=/After= the previous one
 * unless dependencies are off; what the environment's scheduler refuses or ties differently
 * (Instances=, Socket=, Wants= chains) comes from its unit rules (controller/scheduler/unit-rules.ts).
 */
import { ConfigError } from "../../shared/errors.js";
import { placementOf, type Placement } from "../../shared/placement.js";
import type { Deployment, UnitRole, UnitSpec } from "../../shared/spec.js";
import { cloneUnit, parseUnitFile, renderUnitFile, type UnitFile } from "../../shared/unit-file.js";
import {
  ARCHIVE_COMPONENT,
  GROUP_RE,
  NAME_RE,
  VERSION_RE,
  reservedUnitName,
  unitName,
} from "../../shared/unit-name.js";
import type { FileEntry, UnitTemplate } from "./inputs.js";
import { substitute } from "./substitute.js";
import { buildArchive, type BuiltArchive } from "./archive.js";
import {
  addDependency,
  checkHoustonSection,
  dropGroupMetadata,
  rewriteReferences,
  serviceDeclOf,
} from "./render-unit.js";
import { attachSocket, socketGuardUnit, socketSpecs, socketUnit } from "./socket.js";
import { AGENTS_UNIT_RULES, type UnitRules } from "../scheduler/unit-rules.js";
import { upgradeOf, upgradeStrategy, type UpgradeStrategy } from "./strategy.js";
import { hasNoPlacementOfItsOwn, writeTogetherForFleet } from "./together.js";

export type DeploymentType = Deployment["type"];

export interface DeploymentRequest {
  environment: string;
  type: DeploymentType;
  /** stack name (service or standalone stack); "global" for global deployments */
  name: string;
  version: string | null;
  group: string | null;
  dependencies: boolean;
}

export interface PlanInputUnit {
  name: string;
  version: string | null;
  role: Exclude<UnitRole, "archive">;
  template: UnitTemplate;
}

export interface PlanInputs {
  variables: Record<string, string>;
  units: PlanInputUnit[];
  files: FileEntry[];
  filesSource: string;
}

export interface Plan {
  stack: string;
  environment: string;
  deployment: Deployment;
  units: UnitSpec[];
  archives: BuiltArchive[];
  /** how each versioned unit's new version takes over from the old (controller/plan/strategy.ts) */
  strategies: { unit: string; strategy: UpgradeStrategy }[];
}

export { ARCHIVE_COMPONENT };

/** The one set of substitutions for units and files: the environment's variables, then {service}, {environment}, {group}. */
export function templateVariables(
  variables: Record<string, string>,
  req: Pick<DeploymentRequest, "type" | "name" | "environment" | "group">,
): Record<string, string> {
  return { ...variables, service: stackOf(req), environment: req.environment, group: req.group ?? "" };
}

export function stackOf(req: Pick<DeploymentRequest, "type" | "name">): string {
  return req.type === "global" ? "global" : req.name;
}

/** `rules`: what the environment's scheduler allows in unit files (default: Houston's agents). */
export function planDeployment(inputs: PlanInputs, req: DeploymentRequest, rules = AGENTS_UNIT_RULES): Plan {
  const stack = stackOf(req);
  if (!NAME_RE.test(stack)) throw new ConfigError("command line", `invalid stack name ${JSON.stringify(stack)}`);
  if (req.group !== null && !GROUP_RE.test(req.group))
    throw new ConfigError(
      "command line",
      `invalid group ${JSON.stringify(req.group)} (lowercase letters, digits, '-')`,
    );
  if (req.version !== null && !VERSION_RE.test(req.version))
    throw new ConfigError("command line", `invalid version ${JSON.stringify(req.version)}`);
  if (req.type === "service" && req.version === null)
    throw new ConfigError("command line", "a service deployment needs a VERSION");
  const vars = templateVariables(inputs.variables, req);

  interface Rendered {
    spec: Omit<UnitSpec, "text">;
    unit: UnitFile;
    source: string;
  }
  const rendered: Rendered[] = [];
  const strategies: Plan["strategies"] = [];
  const refNames = new Map<string, string>();
  for (const input of inputs.units) {
    const component = input.role === "service" ? null : input.name;
    const version = input.version ?? "latest";
    const name = unitName({ stack, component, group: req.group, version });
    const reserved = reservedUnitName(name);
    if (reserved) throw new ConfigError(input.template.source, reserved);
    // systemd refuses longer names (UNIT_NAME_MAX): every host's agent would fail to write it
    if (name.length > 255)
      throw new ConfigError(
        "command line",
        `unit name ${name} is ${name.length} characters long; systemd takes at most 255 (a shorter version, group or name)`,
      );
    if (rendered.some((r) => r.spec.name === name))
      throw new ConfigError(input.template.source, `unit ${name} is listed twice in this deployment`);
    const unit = parseUnitFile(substitute(input.template.text, vars), input.template.source);
    checkHoustonSection(unit, input.template.source);
    for (const e of unit.sections.filter((sec) => sec.name === "X-Fleet").flatMap((sec) => sec.entries)) {
      // fleet's old spellings (X-ConditionMachineMetadata=, …) are read, and written, as the new ones
      e.key = rules.fleetKeyAliases[e.key] ?? e.key;
      const why = rules.refuseFleetKey(e.key);
      if (why) throw new ConfigError(input.template.source, why, e.line);
    }
    const wants = placementOf(unit, input.template.source); // malformed [X-Fleet] is an error before anything is dropped
    const refused = (wants.instances ?? 1) > 1 ? rules.refuseInstances(wants.instances ?? 1) : null;
    if (refused) throw new ConfigError(input.template.source, refused);
    if (input.role !== "service" && socketSpecs(unit, input.template.source).length) {
      throw new ConfigError(
        input.template.source,
        "[X-Houston] Socket= belongs on the service unit of a service deployment (its versions share the socket)",
      );
    }
    if (req.group === null) dropGroupMetadata(unit);
    refNames.set(`${input.name}.service`, name);
    const service = serviceDeclOf(unit, stack, component, input.template.source);
    const strategy = upgradeStrategy({
      role: input.role,
      port: service?.port ?? null,
      portRange: service?.portRange ?? null,
      refuseDynamicPort: rules.refuseDynamicPort,
      socket: input.role === "service" && socketSpecs(unit, input.template.source).length > 0,
      upgrade: upgradeOf(unit, input.template.source),
      refuseReplace: rules.refuseReplace,
      source: input.template.source,
    });
    if (strategy) strategies.push({ unit: name, strategy });
    rendered.push({
      spec: {
        name,
        stack,
        component,
        group: req.group,
        version,
        role: input.role,
        placements: [placementOf(unit, input.template.source)],
        service,
        ...(strategy?.kind === "replace" ? { upgrade: "replace" as const } : {}),
      },
      unit,
      source: input.template.source,
    });
  }

  // a service's units with no placement of their own go where the service goes
  const service = req.type === "service" ? rendered.find((r) => r.spec.role === "service") : undefined;
  const servicePlacement = service?.spec.placements[0];
  if (service && servicePlacement)
    for (const r of rendered) {
      const own = r.spec.placements[0];
      if (r.spec.role !== "dependency" || !own || !hasNoPlacementOfItsOwn(own, servicePlacement)) continue;
      if (rules.together === "follow") r.spec = { ...r.spec, together: true };
      else writeTogetherForFleet(r.unit, service.spec.name, servicePlacement);
    }

  const archives: BuiltArchive[] = [];
  if (inputs.files.length > 0) {
    const archive = buildArchive(inputs.files);
    archives.push(archive);
    const version = archive.sha256.slice(0, 8);
    const name = unitName({ stack, component: ARCHIVE_COMPONENT, group: req.group, version });
    refNames.set(`${ARCHIVE_COMPONENT}.service`, name);
    const entry: Rendered = {
      spec: {
        name,
        stack,
        component: ARCHIVE_COMPONENT,
        group: req.group,
        version,
        role: "archive",
        placements: archivePlacements(rendered),
        archive: archive.sha256,
      },
      unit: archiveUnit(stack, archive),
      source: inputs.filesSource,
    };
    if (req.type === "global") rendered.push(entry);
    else rendered.unshift(entry);
  }

  let previous: string | null = null;
  // the backend's rules say how a unit needs its predecessor, and whether each needs the file unit
  const archiveName = rendered.find((r) => r.spec.role === "archive")?.spec.name ?? null;
  const units: UnitSpec[] = rendered.map((r) => {
    const unit = cloneUnit(r.unit);
    rewriteReferences(unit, refNames);
    if (req.dependencies && previous) addDependency(unit, previous, rules.chainNeed(previous === archiveName));
    if (rules.eachRequiresArchive && archiveName && r.spec.name !== archiveName) addDependency(unit, archiveName);
    previous = r.spec.name;
    // read again after the rewrite: MachineOf=cache.service names the rendered unit
    const placements = r.spec.role === "archive" ? r.spec.placements : [placementOf(unit, r.source)];
    return { ...r.spec, placements, text: renderUnitFile(unit) } as UnitSpec;
  });
  units.unshift(
    ...socketUnits(
      rendered.find((r) => r.spec.role === "service"),
      stack,
      req.group,
      units,
      rules,
    ),
  );
  return {
    stack,
    environment: req.environment,
    deployment: { type: req.type, name: stack, version: req.version, group: req.group },
    units,
    archives,
    strategies,
  };
}

/**
 * With [X-Houston] Socket= on the service: the stack's socket and guard units (first in the spec,
 * outside the Requires= chain), and the service wired to the socket. Stable names and texts, so a
 * new version keeps the same socket open.
 */
function socketUnits(
  service: { spec: Omit<UnitSpec, "text">; unit: UnitFile; source: string } | undefined,
  stack: string,
  group: string | null,
  units: UnitSpec[],
  rules: UnitRules,
): UnitSpec[] {
  if (!service) return [];
  const listen = socketSpecs(service.unit, service.source);
  if (listen.length === 0) return [];
  if (rules.refuseSocket) throw new ConfigError(service.source, rules.refuseSocket);
  const parts = { stack, component: null, group, version: "socket" };
  const socketName = unitName({ ...parts, kind: "socket" });
  const guardName = unitName({ ...parts, kind: "socket-guard" });
  for (const n of [socketName, guardName]) {
    const reserved = reservedUnitName(n);
    if (reserved) throw new ConfigError(service.source, reserved);
  }
  const i = units.findIndex((u) => u.name === service.spec.name);
  const svc = units[i];
  if (!svc) return [];
  const wired = parseUnitFile(svc.text, service.source);
  attachSocket(wired, socketName);
  units[i] = { ...svc, text: renderUnitFile(wired) };
  const base = { stack, component: null, group, version: "socket", placements: svc.placements };
  return [
    { ...base, name: socketName, role: "socket", text: renderUnitFile(socketUnit(stack, svc.name, listen)) },
    { ...base, name: guardName, role: "socket-guard", text: renderUnitFile(socketGuardUnit(stack)) },
  ];
}

/**
 * The archive goes wherever a unit of the deployment goes: with only global units, to every
 * machine one of them matches (each agent decides); otherwise the scheduler puts it beside the
 * placed units (shared/schedule.ts).
 */
function archivePlacements(rendered: { spec: { placements: Placement[] } }[]): Placement[] {
  const all = rendered.flatMap((r) => r.spec.placements);
  if (all.length === 0 || all.some((p) => !p.global)) return [{ global: false, metadata: {} }];
  if (all.some((p) => Object.keys(p.metadata).length === 0)) return [{ global: true, metadata: {} }];
  const seen = new Map(all.map((p) => [JSON.stringify({ global: true, metadata: p.metadata }), p]));
  return [...seen.values()].map((p) => ({ global: true, metadata: p.metadata }));
}

function archiveUnit(stack: string, archive: BuiltArchive): UnitFile {
  return {
    sections: [
      {
        name: "Unit",
        entries: [
          {
            key: "Description",
            value: `Houston file archive ${archive.sha256.slice(0, 12)} of ${stack} (${archive.files.length} files)`,
          },
        ],
      },
      {
        name: "Service",
        entries: [
          { key: "Type", value: "oneshot" },
          { key: "RemainAfterExit", value: "yes" },
          // the agent places the files (verified, atomically) before it starts this unit
          { key: "ExecStart", value: "/bin/true" },
        ],
      },
      { name: "X-Houston", entries: [{ key: "Archive", value: archive.sha256 }] },
    ],
  };
}
