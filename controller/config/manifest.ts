/**
 * manifest.yaml: environments, per-environment variables, global units, standalone (shared)
 * stacks and service dependencies, in the seed Houston's format (both spellings of each key).
 */
import { join } from "node:path";
import { parseConsulAddress } from "../../shared/consul-transport.js";
import { ConfigError, errorText } from "../../shared/errors.js";
import { NAME_RE, VERSION_RE } from "../../shared/unit-name.js";
import { isRecord, readYamlFile, type YamlFile } from "./yaml-file.js";

export interface UnitRef {
  name: string;
  version: string | null;
  /** included only when deploying to this environment */
  environment: string | null;
  line: number | undefined;
}

export type SchedulerName = "agents" | "fleet";
export const SCHEDULERS: readonly SchedulerName[] = ["agents", "fleet"];

export interface EnvironmentConfig {
  consul: string | null;
  fleet: string | null;
  /** who places units: Houston's agents, or fleet (the default when `fleet:` is named) */
  scheduler: SchedulerName;
  /** `min-healthy:` the window (seconds) of units that prove no readiness (null: the rollout's --delay) */
  minHealthy: number | null;
  /** fleet was chosen because `fleet:` is named, not by `scheduler: fleet` (a rollout says so) */
  fleetByEndpoint?: true;
}

export interface Manifest {
  file: string;
  environments: Record<string, EnvironmentConfig>;
  variables: Record<string, Record<string, string>>;
  globalUnits: UnitRef[];
  standalone: Record<string, UnitRef[]>;
  services: Record<string, UnitRef[]>;
}

/** what an environment may say; anything else is a typo that would otherwise be ignored (`consull:`) */
const ENVIRONMENT_KEYS = ["consul", "fleet", "scheduler", "min-healthy"];

const REF_RE = /^([A-Za-z0-9][A-Za-z0-9_.-]*?)(?::([A-Za-z0-9][A-Za-z0-9_.-]*))?(?:\[([A-Za-z_-]+):([^\]]+)\])?$/;

/** `name`, `name:version`, `name:version[environment:ENV]` (or `name[environment:ENV]`). */
export function parseUnitRef(text: string, where: { file: string; line?: number | undefined }): UnitRef {
  const m = REF_RE.exec(text.trim());
  if (!m || !m[1])
    throw new ConfigError(
      where.file,
      `unit reference ${JSON.stringify(text)} is not name[:version][environment:ENV]`,
      where.line,
    );
  if (m[3] !== undefined && m[3] !== "environment") {
    throw new ConfigError(
      where.file,
      `unit reference ${JSON.stringify(text)}: unknown condition [${m[3]}:…] (only [environment:ENV])`,
      where.line,
    );
  }
  const version = m[2] ?? null;
  if (version !== null && !VERSION_RE.test(version))
    throw new ConfigError(where.file, `unit reference ${JSON.stringify(text)}: bad version`, where.line);
  return { name: m[1], version, environment: m[4] ?? null, line: where.line };
}

export function loadManifest(dir: string): Manifest {
  const y: YamlFile = readYamlFile(join(dir, "manifest.yaml"), dir);
  return manifestFromYaml(y);
}

export function manifestFromYaml(y: YamlFile): Manifest {
  if (!isRecord(y.data)) y.fail([], "the manifest must be a mapping (environments, variables, units…)");
  const root = y.data;
  const known = new Set([
    "environments",
    "variables",
    "global-units",
    "global",
    "shared-stacks",
    "standalone",
    "shared-units",
    "service",
  ]);
  for (const key of Object.keys(root))
    if (!known.has(key)) y.fail([key], `unknown key (known: ${[...known].join(", ")})`);

  // records keyed by names from the file have no prototype: "constructor" or "__proto__" is just a name
  const environments: Record<string, EnvironmentConfig> = Object.create(null) as Record<string, EnvironmentConfig>;
  const envs = root.environments;
  if (envs !== undefined && envs !== null && !isRecord(envs))
    y.fail(["environments"], "must be a mapping of environment name → {consul, fleet, scheduler, min-healthy}");
  if (!isRecord(envs) || Object.keys(envs).length === 0)
    y.fail(["environments"], "at least one environment is required");
  for (const [name, value] of Object.entries(envs)) {
    const v = value ?? {};
    if (!isRecord(v)) y.fail(["environments", name], "must be a mapping with consul/fleet/scheduler/min-healthy");
    for (const k of Object.keys(v))
      if (!ENVIRONMENT_KEYS.includes(k))
        y.fail(["environments", name, k], `unknown key (known: ${ENVIRONMENT_KEYS.join(", ")})`);
    const str = (k: string): string | null => {
      const x = v[k];
      if (x === undefined || x === null) return null;
      if (typeof x !== "string") y.fail(["environments", name, k], "must be a string (URL or host:port)");
      return x;
    };
    const consul = str("consul");
    if (consul !== null) {
      try {
        parseConsulAddress(consul);
      } catch (err) {
        y.fail(["environments", name, "consul"], errorText(err));
      }
    }
    const fleet = str("fleet");
    if (fleet !== null && !/^(https?:\/\/[^/\s]+\/?|unix:\/\/\/\S+)$/.test(fleet))
      y.fail(
        ["environments", name, "fleet"],
        `${JSON.stringify(fleet)} is not a fleet endpoint (http(s)://host:port or unix:///path)`,
      );
    const scheduler = str("scheduler") ?? (fleet !== null ? "fleet" : "agents");
    if (scheduler !== "agents" && scheduler !== "fleet")
      y.fail(["environments", name, "scheduler"], `${JSON.stringify(scheduler)} is not a scheduler (agents or fleet)`);
    const mh = v["min-healthy"];
    if (mh !== undefined && mh !== null && (typeof mh !== "number" || !Number.isInteger(mh) || mh < 0 || mh > 86_400))
      y.fail(
        ["environments", name, "min-healthy"],
        `must be a whole number of seconds (0 to 86400), got ${JSON.stringify(mh)}`,
      );
    environments[name] = {
      consul,
      fleet,
      scheduler,
      minHealthy: typeof mh === "number" ? mh : null,
      ...(str("scheduler") === null && fleet !== null ? { fleetByEndpoint: true as const } : {}),
    };
  }

  const variables: Record<string, Record<string, string>> = Object.create(null) as Record<
    string,
    Record<string, string>
  >;
  const vars = root.variables ?? {};
  if (!isRecord(vars)) y.fail(["variables"], "must be a mapping of environment → name → value");
  for (const [env, map] of Object.entries(vars)) {
    if (!isRecord(map)) y.fail(["variables", env], "must be a mapping of name → value");
    if (!Object.hasOwn(environments, env))
      y.fail(["variables", env], `environment ${env} is not defined under environments`);
    const values: Record<string, string> = Object.create(null) as Record<string, string>;
    variables[env] = values;
    for (const [k, val] of Object.entries(map)) {
      if (!["string", "number", "boolean"].includes(typeof val))
        y.fail(["variables", env, k], "must be a string, number or boolean");
      values[k] = String(val);
    }
  }

  const refList = (key: string, path: (string | number)[], value: unknown): UnitRef[] => {
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) y.fail(path, `${key} must be a list of unit references`);
    return value.map((item, i) => {
      if (typeof item !== "string") y.fail([...path, i], "a unit reference must be a string like name:version");
      const ref = parseUnitRef(item, { file: y.file, line: y.lineOf([...path, i]) });
      if (ref.environment !== null && !Object.hasOwn(environments, ref.environment)) {
        y.fail(
          [...path, i],
          `[environment:${ref.environment}] names an environment that is not defined (known: ${Object.keys(environments).join(", ")})`,
        );
      }
      return ref;
    });
  };
  const pick = (a: string, b: string): [string, unknown] => (root[a] !== undefined ? [a, root[a]] : [b, root[b]]);
  const stackMap = (a: string, b: string): Record<string, UnitRef[]> => {
    const [key, value] = pick(a, b);
    if (value === undefined || value === null) return {};
    if (!isRecord(value)) y.fail([key], "must be a mapping of stack name → list of units");
    const out: Record<string, UnitRef[]> = Object.create(null) as Record<string, UnitRef[]>;
    for (const [stack, list] of Object.entries(value)) {
      if (!NAME_RE.test(stack)) y.fail([key, stack], "stack names use letters, digits, '.', '_' and '-'");
      out[stack] = refList(key, [key, stack], list);
    }
    return out;
  };
  const [gKey, gValue] = pick("global-units", "global");
  return {
    file: y.file,
    environments,
    variables,
    globalUnits: refList(gKey, [gKey], gValue),
    standalone: stackMap("shared-stacks", "standalone"),
    services: stackMap("shared-units", "service"),
  };
}
