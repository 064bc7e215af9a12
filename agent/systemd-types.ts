/**
 * What the agent knows of systemd, apart from the D-Bus client (systemd.ts): the states a unit
 * reports, systemd's errors, and the part of the client the agent needs (SystemdApi).
 */
import { HoustonError } from "../shared/errors.js";
import type { Systemd } from "./systemd.js";

export class SystemdError extends HoustonError {}

/** systemd's job results: done, canceled, timeout, failed, dependency, skipped */
export type JobResult = string;

export interface UnitState {
  loadState: string;
  activeState: string;
  subState: string;
  /** Service Result (e.g. exit-code) for .service units */
  result?: string;
  /** systemd's NRestarts: automatic restarts since the unit was last started by a job (.service units, when asked) */
  nRestarts?: number;
  /** when the unit last became active, µs on the host's monotonic clock (ActiveEnterTimestampMonotonic; when asked) */
  activeEnterUs?: number;
  /** a unit that failed or restarted: when its job started it (InactiveExitTimestamp, µs since the epoch), so that its log is of this run */
  startedUs?: number;
}

export type StateListener = (unit: string, state: Partial<UnitState>) => void;

/**
 * What the agent needs of systemd: the D-Bus client below, or the in-memory model of the scale
 * benchmark (scripts/bench/scale.ts), which is labelled as a load model.
 */
export type SystemdApi = Pick<
  Systemd,
  | "bootMark"
  | "onStateChange"
  | "reload"
  | "resetFailed"
  | "restartUnit"
  | "startUnit"
  | "stopUnit"
  | "unitSource"
  | "unitStates"
  | "allLoaded"
>;
