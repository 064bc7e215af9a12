/** Background processes the harness started, by PID: what a PID runs now, and stopping one. */
import { readFileSync } from "node:fs";

/** Whether `pid` runs `program` (its argv[0] ends with it): a PID read from a state file may have been reused. */
export function runs(pid: number, program: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]?.endsWith(program) === true;
  } catch {
    return false;
  }
}

/** Stopping a background process by PID: SIGTERM (or `signal`), wait up to 5 s, then SIGKILL. */
export async function killAndWait(pid: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone */
  }
}
