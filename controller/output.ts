/**
 * The controller's voice: seed-style `INFO     message` lines on stderr, JSON on stdout with --json.
 */
export type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";

export interface Output {
  log(level: Level, message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** the command's result on stdout (text or JSON) */
  print(text: string): void;
}

export function consoleOutput(opts: { verbose: boolean; quiet?: boolean }): Output {
  const log = (level: Level, message: string): void => {
    if (level === "DEBUG" && !opts.verbose) return;
    if (opts.quiet && level !== "ERROR") return;
    process.stderr.write(`${level.padEnd(8)} ${message}\n`);
  };
  return {
    log,
    info: (m) => log("INFO", m),
    warn: (m) => log("WARNING", m),
    error: (m) => log("ERROR", m),
    debug: (m) => log("DEBUG", m),
    print: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  };
}

/** Exit statuses, documented in the README. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  consulUnreachable: 3,
  lockHeld: 4,
  permissionDenied: 5,
} as const;
