/**
 * Unit templates: units/shared/NAME.service, units/service/NAME.service, units/global/NAME.service,
 * or NAME.yaml in the same folders: a mapping of stack name (or `global`) → unit text.
 */
import { join } from "node:path";
import { ConfigError } from "../../shared/errors.js";
import { NAME_RE } from "../../shared/unit-name.js";
import type { UnitTemplate } from "../plan/inputs.js";
import { configFileExists, readConfigText, readYamlFile, type YamlFile } from "./yaml-file.js";

export type { UnitTemplate } from "../plan/inputs.js";

export type UnitFolder = "shared" | "service" | "global";

/** Finds NAME's template for `stack`, trying folders in order; errors list every place looked. */
export function findUnitTemplate(
  dir: string,
  folders: UnitFolder[],
  name: string,
  stack: string,
  wantedBy: string,
): UnitTemplate {
  // the name becomes a path: nothing is read before it is known to stay inside units/<folder>/
  if (!NAME_RE.test(name))
    throw new ConfigError(wantedBy, `invalid unit name ${JSON.stringify(name)} (letters, digits, '.', '_', '-')`);
  const tried: string[] = [];
  for (const folder of folders) {
    const yamlFile = join(dir, "units", folder, `${name}.yaml`);
    if (configFileExists(yamlFile, dir)) {
      const y: YamlFile = readYamlFile(yamlFile, dir);
      if (y.data === null || typeof y.data !== "object" || Array.isArray(y.data))
        y.fail([], "expected a mapping of stack name (or global) → unit text");
      const map = y.data as Record<string, unknown>;
      const text = Object.hasOwn(map, stack) ? map[stack] : undefined;
      if (typeof text === "string") return { text, source: `${yamlFile} (${stack})` };
      if (text !== undefined) y.fail([stack], "must be the unit file text");
      tried.push(`${yamlFile} (no key ${stack})`);
    } else tried.push(yamlFile);
    const unitFile = join(dir, "units", folder, `${name}.service`);
    if (configFileExists(unitFile, dir)) return { text: readConfigText(unitFile, dir), source: unitFile };
    tried.push(unitFile);
  }
  throw new ConfigError(wantedBy, `unit ${name} not found for stack ${stack}; looked in: ${tried.join(", ")}`);
}
