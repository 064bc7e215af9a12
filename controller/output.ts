/**
 * The controller's voice: seed-style `INFO     message` lines on stderr, JSON on stdout with --json.
 * It writes no terminal escape code of its own except the live progress line (a terminal only, not
 * with TERM=dumb), and none that text read from KV, hosts or files carries: control characters in
 * what it prints are shown as `\u001b` (visible()).
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
  /** where a rollout stands now ("" when nothing is pending): a live line on a terminal, a plain
   * line per change otherwise, an NDJSON event with --json */
  progress(text: string): void;
}

export interface ConsoleOptions {
  verbose: boolean;
  /** rollouts with --json: every line and progress change also as an NDJSON event on stdout */
  events?: boolean;
  /** a terminal: progress is one line rewritten in place, with the elapsed time */
  live?: boolean;
  /** off a terminal, an unchanged progress line is said again this often (no silent waits) */
  repeatMs?: number;
}

/**
 * Text as it may reach a terminal: control characters other than line breaks and tabs (an escape
 * sequence in an agent's error, a unit's text, a KV document) are written as `\u001b`, so that
 * nothing read from elsewhere can move the cursor, recolour or retitle the user's terminal.
 */
export function visible(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Whether a live, rewritten progress line may be drawn on this stream (a terminal that is not dumb). */
export function liveTerminal(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.CI && env.TERM !== "dumb";
}

/** Off a terminal, a wait that has not changed for this long is said again. */
export const PROGRESS_REPEAT_MS = 10_000;

export function consoleOutput(opts: ConsoleOptions): Output {
  const t0 = Date.now();
  let shown = ""; // the live progress line on a terminal
  let lastProgress = "";
  let ticker: NodeJS.Timeout | null = null;
  let repeater: NodeJS.Timeout | null = null;
  const stopRepeating = (): void => {
    if (repeater) clearInterval(repeater);
    repeater = null;
  };
  const event = (e: Record<string, unknown>): void => {
    if (opts.events)
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), elapsedMs: Date.now() - t0, ...e })}\n`);
  };
  const draw = (): void => {
    if (shown) process.stderr.write(`\r\x1b[K${visible(shown)} (${Math.round((Date.now() - t0) / 1000)}s)`);
  };
  const clear = (): void => {
    if (shown) process.stderr.write("\r\x1b[K");
  };
  const log = (level: Level, message: string): void => {
    if (level === "DEBUG" && !opts.verbose) return;
    clear();
    process.stderr.write(`${level.padEnd(8)} ${visible(message)}\n`);
    draw();
    event({ event: "log", level, message });
  };
  return {
    log,
    info: (m) => log("INFO", m),
    warn: (m) => log("WARNING", m),
    error: (m) => log("ERROR", m),
    debug: (m) => log("DEBUG", m),
    print: (text) => process.stdout.write(visible(text.endsWith("\n") ? text : `${text}\n`)),
    progress(text) {
      if (text === lastProgress) return;
      lastProgress = text;
      event({ event: "progress", text });
      if (opts.live) {
        clear();
        shown = text;
        draw();
        if (text && !ticker) ticker = setInterval(draw, 1000).unref();
        if (!text && ticker) {
          clearInterval(ticker);
          ticker = null;
        }
      } else {
        stopRepeating();
        if (!text) return;
        if (!opts.events) log("INFO", text);
        // the same wait, said again with how long it has lasted, until the progress changes
        const since = Date.now();
        repeater = setInterval(() => {
          const s = Math.round((Date.now() - since) / 1000);
          if (opts.events) event({ event: "progress", text, waitingSeconds: s });
          else log("INFO", `${text} (still waiting, ${s}s)`);
        }, opts.repeatMs ?? PROGRESS_REPEAT_MS).unref();
      }
    },
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
