/**
 * The one systemd edge: the Manager and unit objects over D-Bus (dbus-next, raw messages, so no
 * introspection round-trips). Every reply is checked before it is used.
 *
 * Race handled (seen on these machines): JobRemoved can arrive in the same socket read as the
 * StartUnit reply, i.e. before the caller learns the job path. Results of jobs nobody waits for
 * yet are kept for a while and claimed when the reply is processed.
 */
import dbus from "dbus-next";
import { EventEmitter } from "node:events";
import { errorText } from "../shared/errors.js";
import { SystemdError, type JobResult, type StateListener, type UnitState } from "./systemd-types.js";

const SD = "org.freedesktop.systemd1";
const SD_PATH = "/org/freedesktop/systemd1";
const MANAGER = "org.freedesktop.systemd1.Manager";
const UNIT = "org.freedesktop.systemd1.Unit";
const SERVICE = "org.freedesktop.systemd1.Service";
const PROPS = "org.freedesktop.DBus.Properties";

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new SystemdError(`systemd answered ${what} with ${typeof v}, expected a string`);
  return v;
}

export { SystemdError, type JobResult, type SystemdApi, type UnitState } from "./systemd-types.js";

export class Systemd {
  private readonly jobWaiters = new Map<string, (result: JobResult) => void>();
  private readonly jobResults = new Map<string, JobResult>();
  private readonly pathToUnit = new Map<string, string>();
  /** the other way: a unit whose path is known needs no LoadUnit before its jobs */
  private readonly unitToPath = new Map<string, string>();
  private readonly listeners = new Set<StateListener>();
  private lostListener: ((err: unknown) => void) | null = null;
  private lostReported = false;
  private closing = false;

  private constructor(private readonly bus: dbus.MessageBus) {}

  /** Connects to the system bus at `address` (default $DBUS_SYSTEM_BUS_ADDRESS or the standard socket) and subscribes. */
  static async connect(address?: string): Promise<Systemd> {
    const bus = address ? dbus.sessionBus({ busAddress: address }) : dbus.systemBus();
    const sd = new Systemd(bus);
    bus.on("error", (err: unknown) => sd.lost(err));
    // dbus-next does not forward the socket's end to the bus; its connection object does say it
    const conn: unknown = (bus as unknown as { _connection?: unknown })._connection;
    if (conn instanceof EventEmitter) conn.on("end", () => sd.lost(new Error("the D-Bus connection was closed")));
    bus.on("message", (msg: dbus.Message) => sd.onMessage(msg));
    // a bus that cannot be reached only emits an error: turn it into a failed connect, else the
    // calls below would wait forever and the process would end silently with status 0
    const where = address ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ?? "unix:path=/var/run/dbus/system_bus_socket";
    const unreachable = new Promise<never>((_, reject) => {
      sd.lostListener = (err) =>
        reject(new SystemdError(`cannot reach the system bus at ${where}: ${errorText(err)}`, { cause: err }));
    });
    const subscribe = async (): Promise<void> => {
      await sd.call(
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        "s",
        [`type='signal',sender='${SD}',interface='${MANAGER}',member='JobRemoved'`],
        "org.freedesktop.DBus",
      );
      await sd.call(
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        "s",
        // the Unit interface's changes only (ActiveState, SubState): the Service interface's carry dozens
        // of 64-bit counters that dbus-next would decode (slowly) for nothing
        [`type='signal',sender='${SD}',interface='${PROPS}',member='PropertiesChanged',arg0='${UNIT}'`],
        "org.freedesktop.DBus",
      );
      await sd.call(SD_PATH, MANAGER, "Subscribe", "", []);
    };
    try {
      await Promise.race([subscribe(), unreachable]);
    } catch (err) {
      sd.close();
      throw err;
    }
    sd.lostListener = null;
    return sd;
  }

  close(): void {
    this.closing = true;
    this.bus.disconnect();
  }

  /**
   * Called once if the bus connection fails or closes (e.g. dbus-daemon restarted): calls on a
   * dead connection would never answer, so the owner should restart (the agent exits; systemd
   * starts it again and it reconciles from its state).
   */
  onConnectionLost(listener: (err: unknown) => void): void {
    this.lostListener = listener;
  }

  private lost(err: unknown): void {
    if (this.closing || this.lostReported) return;
    this.lostReported = true;
    this.lostListener?.(err);
  }

  /** Called with every ActiveState/SubState change of units this process has looked up. */
  onStateChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * When this systemd started (UserspaceTimestamp): changes with every boot of the host, so the
   * agent can tell a reboot (its units are then started again, once) from a restart of its own.
   */
  async bootMark(): Promise<string> {
    const v = await this.getProperty(SD_PATH, MANAGER, "UserspaceTimestamp");
    if (typeof v !== "bigint" && typeof v !== "number")
      throw new SystemdError("systemd answered UserspaceTimestamp without a number");
    return String(v);
  }

  async reload(): Promise<void> {
    await this.call(SD_PATH, MANAGER, "Reload", "", []);
  }

  /** Starts the unit and resolves with the job result once systemd has finished the job. */
  startUnit(name: string, timeoutMs = 90_000): Promise<JobResult> {
    return this.runJob("StartUnit", name, timeoutMs);
  }

  stopUnit(name: string, timeoutMs = 90_000): Promise<JobResult> {
    return this.runJob("StopUnit", name, timeoutMs);
  }

  restartUnit(name: string, timeoutMs = 90_000): Promise<JobResult> {
    return this.runJob("RestartUnit", name, timeoutMs);
  }

  async resetFailed(name: string): Promise<void> {
    try {
      await this.call(SD_PATH, MANAGER, "ResetFailedUnit", "s", [name]);
    } catch (err) {
      if (!/NoSuchUnit|not loaded/i.test(errorText(err))) throw err;
    }
  }

  /** Current state; loads the unit object if needed (works for units not loaded yet). */
  async unitState(name: string): Promise<UnitState> {
    const path = await this.unitPath(name);
    const props = await this.getAll(path, UNIT);
    const state: UnitState = {
      loadState: str(props.LoadState, "LoadState"),
      activeState: str(props.ActiveState, "ActiveState"),
      subState: str(props.SubState, "SubState"),
    };
    if (name.endsWith(".service") && state.loadState === "loaded") {
      state.result = str(await this.getProperty(path, SERVICE, "Result"), "Result");
    }
    return state;
  }

  /**
   * The states of many units in one call (ListUnitsByNames), plus the Service Result of the
   * .service units that failed or are restarting (one more call each): a report of N units costs
   * 1 + few calls, not 3 × N. With `restarts`, also NRestarts of each loaded .service unit that
   * runs or restarts (one more call each, made concurrently): what a report needs to tell a
   * rollout that a unit restarted between two looks; and of a loaded service that failed, restarts
   * or has restarted, when its job started it (for its log lines). With `activeSince`, also when
   * each of those units that is active became so (one more call each): how long it has stood.
   */
  async unitStates(
    names: string[],
    opts: { restarts?: boolean; activeSince?: ReadonlySet<string> } = {},
  ): Promise<Map<string, UnitState>> {
    const out = new Map<string, UnitState>();
    const paths = new Map<string, string>();
    if (names.length === 0) return out;
    const [rows] = await this.call(SD_PATH, MANAGER, "ListUnitsByNames", "as", [names]);
    if (!Array.isArray(rows)) throw new SystemdError("systemd answered ListUnitsByNames without a list");
    for (const row of rows as unknown[]) {
      if (!Array.isArray(row) || row.length < 7)
        throw new SystemdError("systemd answered ListUnitsByNames with a malformed entry");
      const [name, , loadState, activeState, subState, , path] = row as unknown[];
      const unit = str(name, "ListUnitsByNames name");
      if (typeof path === "string" && path) {
        this.pathToUnit.set(path, unit);
        this.unitToPath.set(unit, path);
        paths.set(unit, path);
      }
      out.set(unit, {
        loadState: str(loadState, "LoadState"),
        activeState: str(activeState, "ActiveState"),
        subState: str(subState, "SubState"),
      });
    }
    for (const [name, state] of out) {
      // a Result other than success matters for a failed unit, and one restarting (activating)
      if (!name.endsWith(".service") || state.loadState !== "loaded") continue;
      if (state.activeState !== "failed" && state.activeState !== "activating") continue;
      const path = paths.get(name) ?? (await this.unitPath(name));
      state.result = str(await this.getProperty(path, SERVICE, "Result"), "Result");
    }
    if (opts.restarts) {
      const running = [...out].filter(
        ([name, s]) => name.endsWith(".service") && s.loadState === "loaded" && s.activeState !== "inactive",
      );
      await Promise.all(
        running.map(async ([name, state]) => {
          const path = paths.get(name) ?? (await this.unitPath(name));
          const n = await this.getProperty(path, SERVICE, "NRestarts");
          if (typeof n === "number" && Number.isInteger(n) && n >= 0) state.nRestarts = n;
        }),
      );
    }
    // a unit in trouble: when this run began (restarts do not pass through inactive), for its log lines
    const troubled = [...out].filter(
      ([name, s]) =>
        opts.restarts &&
        name.endsWith(".service") &&
        s.loadState === "loaded" &&
        (s.activeState === "failed" || s.activeState === "activating" || (s.nRestarts ?? 0) > 0),
    );
    await this.timestamps(troubled, paths, "InactiveExitTimestamp", (state, us) => (state.startedUs = us));
    const active = [...out].filter(([name, s]) => opts.activeSince?.has(name) && s.activeState === "active");
    await this.timestamps(active, paths, "ActiveEnterTimestampMonotonic", (state, us) => (state.activeEnterUs = us));
    return out;
  }

  /** A µs timestamp property of each of these units (concurrently); systemd's 0 ("never") is left out. */
  private async timestamps(
    units: [string, UnitState][],
    paths: ReadonlyMap<string, string>,
    prop: "InactiveExitTimestamp" | "ActiveEnterTimestampMonotonic",
    set: (state: UnitState, us: number) => void,
  ): Promise<void> {
    await Promise.all(
      units.map(async ([name, state]) => {
        const path = paths.get(name) ?? (await this.unitPath(name));
        const v = await this.getProperty(path, UNIT, prop);
        const us = typeof v === "bigint" ? Number(v) : v;
        if (typeof us === "number" && Number.isSafeInteger(us) && us > 0) set(state, us);
      }),
    );
  }

  /**
   * Whether systemd has each of these units loaded (one ListUnitsByNames call). Asking loads a
   * unit, and systemd (v246 on) re-reads the unit directories for a name it knew as not-found when
   * they changed since: a file added under a new name is loaded without a daemon reload. Callers
   * ask only for names systemd did not have before the file was written (see observe.ts), so
   * "loaded" means loaded from that file.
   */
  async allLoaded(names: string[]): Promise<boolean> {
    const states = await this.unitStates(names);
    return names.every((name) => states.get(name)?.loadState === "loaded");
  }

  /** Where systemd would load a unit from: LoadState and FragmentPath ("not-found" for a free name). */
  async unitSource(name: string): Promise<{ loadState: string; fragmentPath: string }> {
    const path = await this.unitPath(name);
    const props = await this.getAll(path, UNIT);
    return {
      loadState: str(props.LoadState, "LoadState"),
      fragmentPath: str(props.FragmentPath ?? "", "FragmentPath"),
    };
  }

  private async unitPath(name: string): Promise<string> {
    const reply = await this.call(SD_PATH, MANAGER, "LoadUnit", "s", [name]);
    const path = str(reply[0], "LoadUnit");
    this.pathToUnit.set(path, name);
    this.unitToPath.set(name, path);
    return path;
  }

  private async runJob(method: string, name: string, timeoutMs: number): Promise<JobResult> {
    // so PropertiesChanged of this unit can be mapped to its name
    if (!this.unitToPath.has(name)) await this.unitPath(name);
    const reply = await this.call(SD_PATH, MANAGER, method, "ss", [name, "replace"]);
    const job = str(reply[0], method);
    const early = this.jobResults.get(job);
    if (early !== undefined) {
      this.jobResults.delete(job);
      return early;
    }
    return new Promise<JobResult>((resolve) => {
      const timer = setTimeout(() => {
        this.jobWaiters.delete(job);
        resolve("timeout");
      }, timeoutMs);
      this.jobWaiters.set(job, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
  }

  private onMessage(msg: dbus.Message): void {
    if (msg.type !== dbus.MessageType.SIGNAL) return;
    if (msg.interface === MANAGER && msg.member === "JobRemoved") {
      const [, job, unit, result] = msg.body as unknown[];
      if (typeof job !== "string" || typeof result !== "string") return;
      // a job someone else ran (fleet starting a unit) also changes what the agent reports
      if (typeof unit === "string" && !this.jobWaiters.has(job)) for (const l of this.listeners) l(unit, {});
      const waiter = this.jobWaiters.get(job);
      if (waiter) {
        this.jobWaiters.delete(job);
        waiter(result);
      } else {
        this.jobResults.set(job, result);
        setTimeout(() => this.jobResults.delete(job), 60_000).unref();
      }
      return;
    }
    if (msg.interface === PROPS && msg.member === "PropertiesChanged") {
      const [iface, changed] = msg.body as unknown[];
      const unit = this.pathToUnit.get(msg.path);
      if (iface !== UNIT || !unit || typeof changed !== "object" || changed === null) return;
      const get = (k: string): string | undefined => {
        const v = (changed as Record<string, unknown>)[k];
        return v instanceof dbus.Variant && typeof v.value === "string" ? v.value : undefined;
      };
      const state: Partial<UnitState> = {};
      const a = get("ActiveState");
      const s = get("SubState");
      if (a !== undefined) state.activeState = a;
      if (s !== undefined) state.subState = s;
      if (a === undefined && s === undefined) return;
      for (const l of this.listeners) l(unit, state);
    }
  }

  private async getProperty(path: string, iface: string, prop: string): Promise<unknown> {
    const reply = await this.call(path, PROPS, "Get", "ss", [iface, prop]);
    const v = reply[0];
    if (!(v instanceof dbus.Variant)) throw new SystemdError(`systemd answered Get(${prop}) without a variant`);
    return v.value as unknown;
  }

  private async getAll(path: string, iface: string): Promise<Record<string, unknown>> {
    const reply = await this.call(path, PROPS, "GetAll", "s", [iface]);
    const map = reply[0];
    if (typeof map !== "object" || map === null)
      throw new SystemdError(`systemd answered GetAll(${iface}) without a map`);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(map as Record<string, unknown>))
      out[k] = v instanceof dbus.Variant ? (v.value as unknown) : v;
    return out;
  }

  private async call(
    path: string,
    iface: string,
    member: string,
    signature: string,
    body: unknown[],
    destination = SD,
  ): Promise<unknown[]> {
    const msg = new dbus.Message({ destination, path, interface: iface, member, signature, body });
    let reply: dbus.Message | null;
    try {
      reply = await this.bus.call(msg);
    } catch (err) {
      const name =
        typeof err === "object" && err !== null && "type" in err ? String((err as { type: unknown }).type) : "";
      throw new SystemdError(
        `systemd ${member}(${body.map((b) => JSON.stringify(b)).join(", ")}) failed: ${name ? `${name}: ` : ""}${errorText(err)}`,
        { cause: err },
      );
    }
    return reply?.body ?? [];
  }
}
