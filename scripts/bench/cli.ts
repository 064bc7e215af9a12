/** The built houston CLI as the benchmarks run it: one call, its wall time in ms, or an error with its stderr. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../test/harness/paths.js";

export function houstonCli(consul: string, dir: string, environment: string, ...args: string[]): number {
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "dist", "houston.js"), "-c", dir, "-e", environment, "--consul", consul, ...args],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`houston ${args.join(" ")} failed: ${r.stderr}`);
  return Date.now() - t0;
}
