/**
 * Typed errors, so callers branch on kind rather than on message text.
 * Every message names the file, key or unit it is about.
 */
export class HoustonError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A problem in a Houston config directory: names the file and, where known, the line. */
export class ConfigError extends HoustonError {
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly line?: number,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ""}: ${detail}`);
  }
}

/** Consul answered with an unexpected status, or not at all. */
export class ConsulError extends HoustonError {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Consul could not be reached at all (connection refused, DNS, timeout). */
export class ConsulUnreachableError extends ConsulError {}

/** Consul's ACLs refused the token; the message names the permission it lacks. */
export class ConsulPermissionError extends ConsulError {}

/** A KV value over Consul's 512 KiB limit (HTTP 413). */
export class ValueTooLargeError extends ConsulError {}

/** Something read from KV does not match its schema. Names the key. */
export class InvalidKvDataError extends HoustonError {
  constructor(
    readonly key: string,
    readonly detail: string,
  ) {
    super(`invalid data at KV key ${key}: ${detail}`);
  }
}

/** A KV document changed under a CAS write (another writer got there first); nothing was written. */
export class ConcurrentChangeError extends HoustonError {}

/** An archive failed verification or would write outside the root. Nothing is written. */
export class ArchiveRejectedError extends HoustonError {}

/** A bad flag or setting of the agent (exit 2). */
export class AgentConfigError extends HoustonError {}

/** A unit Houston will not write or take over (another stack's, the system's, a foreign file). */
export class UnitRefusedError extends HoustonError {}

/** A step on a host that did not complete (a start that timed out, a service not registered). */
export class StepFailedError extends HoustonError {}

/** Another session holds a stack's deploy lock. */
export class LockHeldError extends HoustonError {}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
