/**
 * Gathers what the planner needs for one deployment from a Houston config directory.
 * All file I/O of planning happens here; the planner itself is pure.
 */
import { ConfigError } from "../../shared/errors.js";
import type { DeploymentRequest, PlanInputs, PlanInputUnit } from "../plan/plan-deployment.js";
import { stackOf, templateVariables } from "../plan/plan-deployment.js";
import { filesPath, loadFiles } from "./files.js";
import { loadManifest, type Manifest, type UnitRef } from "./manifest.js";
import { findUnitTemplate } from "./units.js";

function environmentVariables(manifest: Manifest, environment: string): Record<string, string> {
  return (Object.hasOwn(manifest.variables, environment) ? manifest.variables[environment] : undefined) ?? {};
}

export function loadDeploymentInputs(
  dir: string,
  req: DeploymentRequest,
  manifest: Manifest = loadManifest(dir),
): PlanInputs {
  if (!Object.hasOwn(manifest.environments, req.environment)) {
    throw new ConfigError(
      manifest.file,
      `environment ${JSON.stringify(req.environment)} is not defined (known: ${Object.keys(manifest.environments).join(", ")})`,
    );
  }
  const stack = stackOf(req);
  const inEnv = (r: UnitRef): boolean => r.environment === null || r.environment === req.environment;
  let units: PlanInputUnit[];
  if (req.type === "global") {
    units = manifest.globalUnits.filter(inEnv).map((r) => ({
      name: r.name,
      version: r.version,
      role: "global" as const,
      template: findUnitTemplate(
        dir,
        ["global", "shared"],
        r.name,
        "global",
        `${manifest.file}${r.line ? `:${r.line}` : ""}`,
      ),
    }));
  } else {
    const map = req.type === "standalone" ? manifest.standalone : manifest.services;
    const refs = Object.hasOwn(map, req.name) ? map[req.name] : undefined;
    if (req.type === "standalone" && !refs) {
      throw new ConfigError(
        manifest.file,
        `standalone stack ${JSON.stringify(req.name)} is not defined under shared-stacks/standalone (known: ${Object.keys(map).join(", ") || "none"})`,
      );
    }
    units = (refs ?? []).filter(inEnv).map((r) => ({
      name: r.name,
      version: r.version,
      role: "dependency" as const,
      template: findUnitTemplate(dir, ["shared"], r.name, stack, `${manifest.file}${r.line ? `:${r.line}` : ""}`),
    }));
    if (req.type === "service") {
      units.push({
        name: req.name,
        version: req.version,
        role: "service",
        template: findUnitTemplate(dir, ["service"], req.name, stack, "command line"),
      });
    }
  }
  const filesSource = filesPath(dir, req.type, req.name);
  const variables = environmentVariables(manifest, req.environment);
  return {
    variables,
    units,
    files: loadFiles(
      filesSource,
      req.environment,
      templateVariables(variables, req),
      new Set(Object.keys(manifest.environments)),
      dir,
    ),
    filesSource,
  };
}
