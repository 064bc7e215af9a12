/**
 * The planner: (loaded config inputs, deployment request) → the ordered units and archives of one
 * deployment. Pure: no I/O, same input → same output (archives included).
 *
 * Order: file archive first (for global deployments: after the global units), then the
 * dependencies in manifest order, then the service. Each unit Requires=/After= the previous one
 * unless dependencies are off.
 */
import { ConfigError } from "../../shared/errors.js";
import { placementOf, type Placement } from "../../shared/placement.js";
import type { Deployment, UnitRole, UnitSpec } from "../../shared/spec.js";
import { cloneUnit, parseUnitFile, renderUnitFile, type UnitFile } from "../../shared/unit-file.js";
import { GROUP_RE, NAME_RE, VERSION_RE, reservedUnitName, unitName } from "../../shared/unit-name.js";
import type { FileEntry } from "../config/files.js";
import type { UnitTemplate } from "../config/units.js";
import { substitute } from "../config/substitute.js";
import { buildArchive, type BuiltArchive } from "./archive.js";
import { addDependency, dropGroupMetadata, rewriteReferences, serviceDeclOf } from "./render-unit.js";

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
}

export const ARCHIVE_COMPONENT = "file-deploy";

export function stackOf(req: Pick<DeploymentRequest, "type" | "name">): string {
  return req.type === "global" ? "global" : req.name;
}

export function planDeployment(inputs: PlanInputs, req: DeploymentRequest): Plan {
  const stack = stackOf(req);
  if (!NAME_RE.test(stack)) throw new ConfigError("command line", `invalid stack name ${JSON.stringify(stack)}`);
  if (req.group !== null && !GROUP_RE.test(req.group)) throw new ConfigError("command line", `invalid group ${JSON.stringify(req.group)} (lowercase letters, digits, '-')`);
  if (req.version !== null && !VERSION_RE.test(req.version)) throw new ConfigError("command line", `invalid version ${JSON.stringify(req.version)}`);
  if (req.type === "service" && req.version === null) throw new ConfigError("command line", "a service deployment needs a VERSION");
  const vars = { ...inputs.variables, service: stack, environment: req.environment, group: req.group ?? "" };

  interface Rendered { spec: Omit<UnitSpec, "text">; unit: UnitFile; source: string }
  const rendered: Rendered[] = [];
  const refNames = new Map<string, string>();
  for (const input of inputs.units) {
    const component = input.role === "service" ? null : input.name;
    const version = input.version ?? "latest";
    const name = unitName({ stack, component, group: req.group, version });
    const reserved = reservedUnitName(name);
    if (reserved) throw new ConfigError(input.template.source, reserved);
    if (rendered.some((r) => r.spec.name === name)) throw new ConfigError(input.template.source, `unit ${name} is listed twice in this deployment`);
    const unit = parseUnitFile(substitute(input.template.text, vars), input.template.source);
    placementOf(unit, input.template.source); // malformed [X-Fleet] is an error before anything is dropped
    if (req.group === null) dropGroupMetadata(unit);
    refNames.set(`${input.name}.service`, name);
    rendered.push({
      spec: {
        name, stack, component, group: req.group, version, role: input.role,
        placements: [placementOf(unit, input.template.source)],
        service: serviceDeclOf(unit, stack, component, input.template.source),
      },
      unit,
      source: input.template.source,
    });
  }

  const archives: BuiltArchive[] = [];
  if (inputs.files.length > 0) {
    const archive = buildArchive(inputs.files);
    archives.push(archive);
    const version = archive.sha256.slice(0, 8);
    const name = unitName({ stack, component: ARCHIVE_COMPONENT, group: req.group, version });
    refNames.set(`${ARCHIVE_COMPONENT}.service`, name);
    const entry: Rendered = {
      spec: { name, stack, component: ARCHIVE_COMPONENT, group: req.group, version, role: "archive", placements: archivePlacements(rendered), archive: archive.sha256 },
      unit: archiveUnit(stack, archive),
      source: inputs.filesSource,
    };
    if (req.type === "global") rendered.push(entry);
    else rendered.unshift(entry);
  }

  let previous: string | null = null;
  const units: UnitSpec[] = rendered.map((r) => {
    const unit = cloneUnit(r.unit);
    rewriteReferences(unit, refNames);
    if (req.dependencies && previous) addDependency(unit, previous);
    previous = r.spec.name;
    return { ...r.spec, text: renderUnitFile(unit) } as UnitSpec;
  });
  return { stack, environment: req.environment, deployment: { type: req.type, name: stack, version: req.version, group: req.group }, units, archives };
}

/** The archive goes wherever any unit of the deployment goes. */
function archivePlacements(rendered: { spec: { placements: Placement[] } }[]): Placement[] {
  const all = rendered.flatMap((r) => r.spec.placements);
  if (all.length === 0 || all.some((p) => Object.keys(p.metadata).length === 0)) return [{ global: true, metadata: {} }];
  const seen = new Map(all.map((p) => [JSON.stringify(p), p]));
  return [...seen.values()];
}

function archiveUnit(stack: string, archive: BuiltArchive): UnitFile {
  return {
    sections: [
      { name: "Unit", entries: [{ key: "Description", value: `Houston file archive ${archive.sha256.slice(0, 12)} of ${stack} (${archive.files.length} files)` }] },
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
