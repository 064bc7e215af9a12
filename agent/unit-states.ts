/**
 * What a report says of each unit: systemd's state now (one ListUnitsByNames call), Result for a
 * unit that failed or is restarting, NRestarts of each running service, whether a unit with a
 * window has stood it (active that long without a break, on the host's monotonic clock; and when
 * the next young unit's window ends, so that the host reports again then), and the last journal
 * lines of a unit that failed or restarted, since the agent started it (not an earlier deploy of
 * the same name; read again only when that changed, after journald took in what it was sent). Also
 * the units fleet ran here and are still stopping: they stay in the report until they are gone,
 * so that a removal waits for them.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { UnitStatus } from "../shared/spec.js";
import type { OwnedUnit } from "./state.js";
import type { SystemdApi, UnitState } from "./systemd.js";
import type { HostDesired } from "./targeting.js";

const run = promisify(execFile);
export type UnitReportState = Omit<UnitStatus, "name">;

export class UnitStates {
  /** as of the last report (also what /status shows) */
  last = new Map<string, UnitReportState>();
  /** units fleet ran on this host: name → stack */
  private readonly fleetSeen = new Map<string, string>();

  /**
   * Per unit (its name and the content it was started with): the earliest wall-clock µs one of its
   * runs is known to have begun. A crash loop's report comes after systemd already restarted the
   * unit, whose InactiveExitTimestamp is then of the new run: the lines of the run that died are
   * older, and the unit's first look (active, for its window) is what keeps them in. Used when the
   * agent's own start of the unit is not known (state of an older agent; units fleet runs): that
   * is the anchor otherwise.
   */
  private readonly firstRun = new Map<string, number>();

  constructor(
    private readonly systemd: Pick<SystemdApi, "unitStates">,
    private readonly journal: Journal | null,
    /** now, µs on CLOCK_MONOTONIC (systemd's *TimestampMonotonic clock; libuv's hrtime is the same) */
    private readonly clockUs: () => number = () => Number(process.hrtime.bigint() / 1000n),
    /** now, µs on the wall clock (the journal's) */
    private readonly wallUs: () => number = () => Date.now() * 1000,
  ) {}

  /**
   * `recheckInMs`: when the youngest window that is still running ends (null: none), after which a
   * report would say more.
   */
  async read(
    owned: OwnedUnit[],
    desired: HostDesired,
  ): Promise<{
    states: Map<string, UnitReportState>;
    lingering: { name: string; stack: string }[];
    recheckInMs: number | null;
  }> {
    const placedHere = new Set(desired.units.filter((u) => u.runner === "fleet").map((u) => u.name));
    for (const u of desired.units) if (u.runner === "fleet") this.fleetSeen.set(u.name, u.stack);
    const names = [
      ...new Set([...owned.map((u) => u.name), ...desired.units.map((u) => u.name), ...this.fleetSeen.keys()]),
    ];
    const windows = new Map(desired.units.flatMap((u) => (u.window ? [[u.name, u.window] as const] : [])));
    // the clock before the read: a unit's age is never overstated
    const nowUs = this.clockUs();
    const wallUs = this.wallUs();
    const now = await this.systemd.unitStates(names, { restarts: true, activeSince: new Set(windows.keys()) });
    let recheckInMs: number | null = null;
    const lingering: { name: string; stack: string }[] = [];
    for (const [name, stack] of this.fleetSeen) {
      if (placedHere.has(name)) continue;
      const s = now.get(name);
      if (!s || s.loadState === "not-found" || s.activeState === "inactive") this.fleetSeen.delete(name);
      else lingering.push({ name, stack });
    }
    const states = new Map<string, UnitReportState>();
    const startedHash = new Map(owned.map((u) => [u.name, u.startedHash ?? ""]));
    const startedAt = new Map(
      owned.flatMap((u) => (u.startedAt !== undefined ? [[u.name, u.startedAt] as const] : [])),
    );
    const runKeys = new Set<string>();
    let synced = false;
    for (const name of names) {
      const s = now.get(name) ?? { loadState: "not-found", activeState: "inactive", subState: "dead" };
      const runKey = `${name} ${startedHash.get(name) ?? ""}`;
      runKeys.add(runKey);
      const before = this.last.get(name);
      const began = this.noteRun(
        runKey,
        s,
        s.activeEnterUs !== undefined ? wallUs - (nowUs - s.activeEnterUs) : undefined,
        before?.activeState,
      );
      const st: UnitReportState = {
        activeState: s.activeState,
        subState: s.subState,
        ...(s.result && s.result !== "success" ? { result: s.result } : {}),
        ...(s.nRestarts !== undefined ? { nRestarts: s.nRestarts } : {}),
      };
      const window = windows.get(name);
      if (window !== undefined) {
        const left = windowLeftMs(window, s.activeState === "active" ? s.activeEnterUs : undefined, nowUs);
        st.stood = left === 0;
        if (left !== null && left > 0) recheckInMs = Math.min(recheckInMs ?? left, left);
      }
      // a failed or restarting unit's own words; read again when it restarted since the last report
      // systemd 254 on: also inactive/dead-before-auto-restart, activating/auto-restart-queued
      const restarting = s.subState.includes("auto-restart");
      const troubled = s.activeState === "failed" || restarting || (s.nRestarts ?? 0) > 0;
      if (troubled) {
        const same = before?.log && before.nRestarts === s.nRestarts && before.activeState === s.activeState;
        if (!same && this.journal && !synced) synced = (await this.journal.sync(), true);
        // since the agent started it (this deploy's every run), else the earliest run it saw
        const agentStartMs = startedAt.get(name);
        const sinceUs = agentStartMs !== undefined ? agentStartMs * 1000 : began;
        st.log = same ? before.log : ((await this.journal?.lines(name, sinceUs)) ?? before?.log);
      }
      states.set(name, st);
    }
    for (const key of this.firstRun.keys()) if (!runKeys.has(key)) this.firstRun.delete(key);
    this.last = states;
    return { states, lingering, recheckInMs };
  }

  /**
   * When the unit's runs began, as far as this agent saw (µs, wall clock): forgotten once it is
   * gone, inactive (not on its way to a restart) or started again after it failed (a later start
   * is a new deploy's), else the earliest of what systemd says of this run (InactiveExitTimestamp,
   * read for units in trouble) and of the first look at it active (read for units with a window).
   */
  private noteRun(
    key: string,
    s: UnitState,
    activeSinceUs: number | undefined,
    wasState: string | undefined,
  ): number | undefined {
    const over = s.activeState === "inactive" && !s.subState.includes("auto-restart");
    if (s.loadState === "not-found" || over || (wasState === "failed" && s.activeState !== "failed"))
      this.firstRun.delete(key);
    if (s.loadState === "not-found" || over) return undefined;
    for (const us of [s.startedUs, activeSinceUs]) {
      const known = this.firstRun.get(key);
      if (us !== undefined && (known === undefined || us < known)) this.firstRun.set(key, us);
    }
    return this.firstRun.get(key);
  }
}

/** The host's journal, as a report reads it. */
export interface Journal {
  /** has journald take in what it was sent before now (best effort) */
  sync(): Promise<void>;
  /** a unit's last 10 lines, since `sinceUs` (wall clock) when known */
  lines(unit: string, sinceUs?: number): Promise<string[] | undefined>;
}

/** The journal through journalctl. */
export const journalctl: Journal = {
  /**
   * Systemd's own lines ("Main process exited") come over the native socket, a unit's output over
   * its stdout stream, and journald can take in the first before the second: without a sync, a
   * unit that died was reported without its last words. A journal the agent cannot ask (a
   * container without journald's socket) is read as it is.
   */
  async sync() {
    await run("journalctl", ["--sync"], { timeout: 3000 }).catch(() => undefined);
  },
  async lines(unit, sinceUs) {
    const since = sinceUs !== undefined ? ["--since", `@${Math.floor(sinceUs / 1_000_000)}`] : [];
    try {
      const { stdout } = await run("journalctl", ["-u", unit, ...since, "-n", "10", "--no-pager", "-o", "cat"], {
        timeout: 3000,
      });
      return stdout.split("\n").filter(Boolean).slice(-10);
    } catch {
      return undefined;
    }
  },
};

/**
 * How much of a unit's window is left (ms): 0 once it has been active `windowS` seconds (since
 * `enterUs`, on the clock of `nowUs`), null while it is not active (nothing to wait for: a report
 * follows its next change anyway).
 */
export function windowLeftMs(windowS: number, enterUs: number | undefined, nowUs: number): number | null {
  if (enterUs === undefined) return null;
  return Math.max(0, Math.ceil(windowS * 1000 - (nowUs - enterUs) / 1000));
}
