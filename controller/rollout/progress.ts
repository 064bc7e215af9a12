/**
 * Pure rollout decisions, fed by agents' reports:
 *  - how hosts are split into a canary and batches of --max-parallel;
 *  - whether a host's report speaks for a generation (one rule, for following and for watching);
 *  - whether a generation's units are active everywhere, still pending, or failed somewhere
 *    (and where, and why), and whether removed units are gone;
 *  - while a batch stands its window: whether a unit failed, left active or restarted (NRestarts
 *    grown past what this rollout first saw, or auto-restart);
 *  - whether each host has said that a unit stood its window (on the host's own clock);
 *  - whether an agent refused the generation's spec (unsigned, untrusted key, ...): that fails it.
 */
import type { UnitTarget } from "../scheduler/targets.js";
import type { HistoryRecord, StatusReport, UnitStatus } from "../../shared/spec.js";

/** Canary first (if any), then groups of maxParallel (null: all the rest at once). */
export function makeBatches(hosts: string[], canary: number, maxParallel: number | null): string[][] {
  const rest = [...hosts].sort();
  const out: string[][] = [];
  if (canary > 0 && rest.length > 0) out.push(rest.splice(0, Math.min(canary, rest.length)));
  const size = maxParallel && maxParallel > 0 ? maxParallel : rest.length;
  while (rest.length > 0) out.push(rest.splice(0, size));
  return out;
}

export type Decision =
  | { kind: "done" }
  | { kind: "waiting"; unit: string; pending: string[]; done: string[] }
  | { kind: "failed"; unit: string; host: string; reason: string };

/**
 * The one rule for whether a host's report speaks for `generation`: its agent has seen that
 * generation or a later one. Anything else (no report, an older one) is no evidence yet.
 */
export function reportIsCurrent(r: StatusReport | undefined, generation: number): r is StatusReport {
  return r !== undefined && r.desiredGeneration !== null && r.desiredGeneration >= generation;
}

/**
 * The first of `hosts` (all reporting hosts when null) whose agent refused `generation` of the
 * stack's spec, or a later one: it will not apply it, so the rollout fails now, with its reason.
 * (Its report stays at the last good generation, so it never speaks for this one.)
 */
export function refusal(
  generation: number,
  reports: ReadonlyMap<string, StatusReport>,
  hosts: readonly string[] | null = null,
): { host: string; reason: string } | null {
  for (const host of hosts ?? [...reports.keys()].sort()) {
    const r = reports.get(host)?.refused;
    if (r && r.generation !== null && r.generation >= generation)
      return { host, reason: `${host} refused generation ${r.generation}: ${r.reason}` };
  }
  return null;
}

/**
 * While a batch waits for its placement, whose refusal fails it: the hosts the batch previews and
 * the scheduler role's holder (`holder`, by its session's node: it does not place a spec it
 * refused). Any other host's report says nothing about this rollout: every agent token may write
 * its own node's report of any stack, and one host must not be able to fail every deploy.
 */
export function placementRefusal(
  generation: number,
  reports: ReadonlyMap<string, StatusReport>,
  scope: readonly UnitTarget[],
  holder: string | null,
): { host: string; reason: string } | null {
  const who = new Set(scope.flatMap((t) => t.hosts));
  if (holder !== null) who.add(holder);
  return refusal(generation, reports, [...who].sort());
}

/**
 * A unit counts as done on a host when that host's agent has seen `generation` (or later) and
 * reports the unit active. A failed unit, an agent error for this generation, or the agent's refusal
 * of the generation's spec fails the rollout at once, even while earlier units are still pending.
 * Units are considered in order.
 */
export function decide(units: UnitTarget[], generation: number, reports: ReadonlyMap<string, StatusReport>): Decision {
  let waiting: Decision | null = null;
  for (const u of units) {
    const pending: string[] = [];
    const done: string[] = [];
    for (const host of u.hosts) {
      const r = reports.get(host);
      if (!reportIsCurrent(r, generation)) {
        const refused = refusal(generation, reports, [host]);
        if (refused) return { kind: "failed", unit: u.name, host, reason: refused.reason };
        pending.push(host);
        continue;
      }
      if (r.errors.length > 0) return { kind: "failed", unit: u.name, host, reason: r.errors.join("; ") };
      const s = r.units.find((x) => x.name === u.name);
      if (s?.activeState === "failed")
        return {
          kind: "failed",
          unit: u.name,
          host,
          reason: withLog(`${u.name} failed${s.result ? ` (Result=${s.result})` : ""}`, s),
        };
      if (s?.subState === "auto-restart")
        return { kind: "failed", unit: u.name, host, reason: withLog(restartedText(u.name, s), s) };
      if (s?.activeState === "active") done.push(host);
      else pending.push(host);
    }
    if (pending.length > 0 && !waiting) waiting = { kind: "waiting", unit: u.name, pending, done };
  }
  return waiting ?? { kind: "done" };
}

/** Hosts whose reports still list any of the removed units (an agent lists a unit until it has removed it). */
export function removalPending(names: string[], reports: ReadonlyMap<string, StatusReport>): string[] {
  const gone = new Set(names);
  const pending: string[] = [];
  for (const [host, r] of reports) {
    const stillThere = r.units.some((u) => gone.has(u.name));
    if (stillThere) pending.push(host);
  }
  return pending.sort();
}

/** The archives of the last `keep` successful deployments in a history (oldest first). */
export function archivesToKeep(history: Pick<HistoryRecord, "result" | "units">[], keep: number): Set<string> {
  const recent = history.filter((h) => h.result === "success").slice(-keep);
  return new Set(recent.flatMap((h) => h.units.flatMap((u) => (u.archive ? [u.archive] : []))));
}

/** Where a unit's NRestarts was first seen in this rollout (the baseline a restart is counted from), by host and unit. */
export type RestartBaseline = Map<string, number>;

const restartKey = (host: string, unit: string): string => `${host}\u0000${unit}`;

/**
 * Notes the NRestarts each unit of the batch had when first reported for `generation` (a unit new
 * to the host starts from 0; one kept from before keeps its old count): a unit restarted when its
 * count grows past that.
 */
export function noteRestarts(
  baseline: RestartBaseline,
  units: UnitTarget[],
  generation: number,
  reports: ReadonlyMap<string, StatusReport>,
): void {
  for (const u of units)
    for (const host of u.hosts) {
      const r = reports.get(host);
      if (!reportIsCurrent(r, generation)) continue;
      const n = r.units.find((x) => x.name === u.name)?.nRestarts;
      if (n !== undefined && !baseline.has(restartKey(host, u.name))) baseline.set(restartKey(host, u.name), n);
    }
}

/**
 * While a batch is watched after it became active (its window, see plan/watch-window.ts): the first
 * unit that failed, restarted (NRestarts grew past `baseline`, or it is in auto-restart), is no
 * longer active (stopped) or gone, on a host whose report is of this generation. A host without
 * such a report (its agent away) is no evidence either way.
 */
export function unhealthy(
  units: UnitTarget[],
  generation: number,
  reports: ReadonlyMap<string, StatusReport>,
  baseline: ReadonlyMap<string, number> = new Map(),
): { unit: string; host: string; reason: string } | null {
  for (const u of units) {
    for (const host of u.hosts) {
      const r = reports.get(host);
      if (!reportIsCurrent(r, generation)) continue;
      if (r.errors.length > 0) return { unit: u.name, host, reason: r.errors.join("; ") };
      const s = r.units.find((x) => x.name === u.name);
      if (!s) return { unit: u.name, host, reason: `${u.name} is no longer in the host's report` };
      const since = baseline.get(restartKey(host, u.name));
      const grew = s.nRestarts !== undefined && since !== undefined && s.nRestarts > since;
      if (s.subState === "auto-restart" || grew)
        return { unit: u.name, host, reason: withLog(`${restartedText(u.name, s, since)} within its window`, s) };
      if (s.activeState === "active" || s.activeState === "reloading") continue;
      const what = s.activeState === "failed" ? "failed" : `left active (now ${s.activeState}/${s.subState})`;
      const result = s.result && s.result !== "success" ? ` (Result=${s.result})` : "";
      return { unit: u.name, host, reason: withLog(`${u.name} ${what}${result} within its window`, s) };
    }
  }
  return null;
}

/**
 * The batch's units, by host, whose host has not said yet that they stood their window: a report
 * of this generation that lists the unit with `stood: false` (the agent reports again when the
 * window ends on its clock). A report without `stood` (an older agent) leaves it to the window the
 * controller counted; a host without a current report is no evidence either way, as in unhealthy.
 */
export function notStood(
  units: UnitTarget[],
  generation: number,
  reports: ReadonlyMap<string, StatusReport>,
): { unit: string; hosts: string[] }[] {
  return units.flatMap((u) => {
    const hosts = u.hosts.filter((host) => {
      const r = reports.get(host);
      return reportIsCurrent(r, generation) && r.units.find((x) => x.name === u.name)?.stood === false;
    });
    return hosts.length ? [{ unit: u.name, hosts }] : [];
  });
}

/** "x restarted (NRestarts 0 → 3, Result=exit-code)": how a rollout names a restart. */
function restartedText(unit: string, s: Pick<UnitStatus, "nRestarts" | "result" | "subState">, since?: number): string {
  const parts = [
    ...(s.nRestarts !== undefined ? [`NRestarts ${since !== undefined ? `${since} → ` : ""}${s.nRestarts}`] : []),
    ...(s.subState === "auto-restart" ? ["now activating/auto-restart"] : []),
    ...(s.result && s.result !== "success" ? [`Result=${s.result}`] : []),
  ];
  return `${unit} restarted${parts.length ? ` (${parts.join(", ")})` : ""}`;
}

/** "Started x.service - …", "Failed to start …", "x.service: Scheduled restart job, …", "x.service: Consumed 1s CPU time." */
const SYSTEMD_JOB_LINE =
  /^(Started|Starting|Stopped|Stopping|Finished|Failed to start|Dependency failed for) |^\S+\.service: (Scheduled restart job|Consumed |Deactivated successfully)/;
/** systemd's own word on a unit: "x.service: Main process exited, …", "x.service: Failed with result 'exit-code'." */
const SYSTEMD_UNIT_LINE = /^\S+\.(service|socket): /;

/**
 * A failure's reason on one line (the final message, history, status): its first line; when that
 * announces log lines, one of them in their place rather than a line ending in a colon: the
 * unit's own last words ("cannot open /etc/app.conf"), else how systemd says it ended ("Main
 * process exited, code=exited, status=3"), never a job line when there is another.
 */
export function reasonLine(reason: string): string {
  const [first = "", ...rest] = reason.split("\n");
  const lines = rest.map((l) => l.trim()).filter(Boolean);
  const notJob = lines.filter((l) => !SYSTEMD_JOB_LINE.test(l));
  const last =
    notJob.filter((l) => !SYSTEMD_UNIT_LINE.test(l)).at(-1) ??
    notJob.filter((l) => !/: Failed with result /.test(l)).at(-1) ??
    notJob.at(-1) ??
    lines.at(-1);
  return first.endsWith("last log lines:") && last !== undefined
    ? `${first.slice(0, -"last log lines:".length)}last log line: ${last}`
    : first;
}

/** A unit's failure as a rollout reports it: what happened, then the unit's last log lines. */
function withLog(what: string, s: Pick<UnitStatus, "log">): string {
  return [what, ...(s.log?.length ? [`last log lines:\n      ${s.log.join("\n      ")}`] : [])].join("; ");
}

/** A batch's window: its length, why, since when, and whose it is (the units with the longest). */
export interface WatchedWindow {
  seconds: number;
  why: string;
  since: number | null;
  /** the units whose window this is; the batch's others are watched with them */
  units: readonly string[];
}

/** The units a window line names: those whose window it is, then the batch's others, "with" them. */
export function windowNames(scope: readonly UnitTarget[], window: WatchedWindow): string {
  const own = scope.filter((u) => window.units.includes(u.name)).map((u) => u.name);
  const others = scope.filter((u) => !own.includes(u.name)).map((u) => u.name);
  const [head, rest] = own.length > 0 ? [own, others] : [others, []];
  return `${head.join(", ")} for ${window.seconds}s (${window.why})${rest.length ? `, with ${rest.join(", ")}` : ""}`;
}

/** how long a placement or a removal may take before the rollout says what it waits for */
export const NOTICE_AFTER_MS = 3000;
