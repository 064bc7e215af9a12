/**
 * How long a rollout watches each unit after it is active (pure): its window, and why. A unit that
 * proves readiness itself (Type=notify, oneshot, forking, dbus; or a service whose HTTP check the
 * rollout sees passing) needs no extra wait; any other service is watched for the seed's --delay
 * (5 s) — it was "active" the moment it forked — or the environment's `min-healthy:` of
 * manifest.yaml instead. A unit's [X-Houston] MinHealthy= sets its own; --min-healthy overrides
 * everything. The windows of one batch overlap: it is watched for the longest (batchWindow). Each
 * unit's window is written into the spec (UnitSpec.window), so that its host can say when the unit
 * has stood it on its own clock.
 */
import { ConfigError } from "../../shared/errors.js";
import type { UnitSpec } from "../../shared/spec.js";
import { entries, parseUnitFile, values } from "../../shared/unit-file.js";

export interface WindowOptions {
  /** --min-healthy, when given (null: not given) */
  flag: number | null;
  /** environments.<env>.min-healthy of manifest.yaml (null: not set) */
  environment: number | null;
  /** --delay: the default window of a unit that does not prove readiness */
  delaySeconds: number;
  /** the unit the rollout confirms through its service's HTTP check in Consul (null: none) */
  confirmedUnit: string | null;
}

export interface UnitWindow {
  unit: string;
  seconds: number;
  /** e.g. "5s: Type=simple, no readiness" */
  why: string;
}

/** Service types whose "active" means the unit said it is ready (or finished, or its main process is up after forking). */
const READY_TYPES = new Set(["notify", "notify-reload", "oneshot", "forking", "dbus"]);

const SECONDS_RE = /^(\d+)s?$/;

/** The longest window a unit may ask for: a day, as the manifest's `min-healthy:` (a timer holds ~24.8 days). */
export const MAX_WINDOW_SECONDS = 86_400;

/** What `MinHealthy=` takes, said after `[X-Houston] MinHealthy=VALUE: ` in an error. */
export const WINDOW_EXPECTED = `expected whole seconds from 0 to ${MAX_WINDOW_SECONDS} (10 or 10s)`;

/** `MinHealthy=10` or `10s`: whole seconds, 0 to MAX_WINDOW_SECONDS; null when it is not that. */
export function parseWindowSeconds(text: string): number | null {
  const m = SECONDS_RE.exec(text.trim());
  const n = m?.[1] !== undefined ? Number(m[1]) : null;
  return n !== null && n <= MAX_WINDOW_SECONDS ? n : null;
}

export function unitWindow(u: Pick<UnitSpec, "name" | "text">, o: WindowOptions): UnitWindow {
  const say = (seconds: number, why: string): UnitWindow => ({ unit: u.name, seconds, why: `${seconds}s: ${why}` });
  if (o.flag !== null) return say(o.flag, "--min-healthy");
  if (!u.name.endsWith(".service")) return say(0, "not a service (nothing runs to watch)");
  const unit = parseUnitFile(u.text, `unit ${u.name}`);
  const own = entries(unit, "X-Houston", "MinHealthy").at(-1);
  if (own) {
    const n = parseWindowSeconds(own.value);
    if (n === null)
      throw new ConfigError(`unit ${u.name}`, `[X-Houston] MinHealthy=${own.value}: ${WINDOW_EXPECTED}`, own.line);
    return say(n, "[X-Houston] MinHealthy=");
  }
  const declared = values(unit, "Service", "Type").at(-1);
  const type = declared ?? (values(unit, "Service", "ExecStart").length === 0 ? "oneshot" : "simple");
  if (READY_TYPES.has(type)) return say(0, `Type=${type}`);
  if (o.confirmedUnit === u.name) return say(0, "its service's HTTP check must pass");
  if (o.environment !== null) return say(o.environment, `Type=${type}, no readiness; the environment's min-healthy`);
  return say(o.delaySeconds, `Type=${type}, no readiness`);
}

/** How long a batch of these units is watched: the longest window (they overlap), and whose. */
export function batchWindow(windows: UnitWindow[]): { seconds: number; units: string[] } {
  const seconds = Math.max(0, ...windows.map((w) => w.seconds));
  return { seconds, units: seconds > 0 ? windows.filter((w) => w.seconds === seconds).map((w) => w.unit) : [] };
}

/**
 * The windows of a deployment's units: the one rule for the rollout and for `plan`. A service
 * deployment's service unit that declares a service is confirmed through its HTTP check (unless
 * --skip-consul).
 */
export function deploymentWindows(
  units: Pick<UnitSpec, "name" | "text" | "role" | "service">[],
  type: "global" | "standalone" | "service",
  o: Omit<WindowOptions, "confirmedUnit"> & { skipConsul: boolean },
): UnitWindow[] {
  const svc = units.find((u) => u.role === "service");
  const confirmedUnit = type === "service" && !o.skipConsul && svc?.service ? svc.name : null;
  return units.map((u) => unitWindow(u, { ...o, confirmedUnit }));
}
