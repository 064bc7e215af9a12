/**
 * Cost as the stack grows: a standalone stack of N global units (each `Requires=` the previous, as
 * the seed chained them) on every host — first deploy, upgrade of all N to a new version (old ones
 * pruned), and the agent's memory after. Medians of `runs`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LocalFleet } from "../../test/harness/local-fleet.js";
import { houstonCli } from "./cli.js";

export interface GrowthResult {
  units: number;
  firstMs: number;
  upgradeMs: number;
  upgradeRatio: number;
  agentRssMb: number;
  agentPeakMb: number;
}

function config(n: number, version: string): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-growth-"));
  mkdirSync(join(dir, "units", "shared"), { recursive: true });
  const names = Array.from({ length: n }, (_, i) => `g${i + 1}`);
  writeFileSync(
    join(dir, "manifest.yaml"),
    `environments:\n  bench: {}\nshared-stacks:\n  grow: [${names.map((x) => `${x}:${version}`).join(", ")}]\n`,
  );
  for (const x of names)
    writeFileSync(
      join(dir, "units", "shared", `${x}.service`),
      "[Unit]\nDescription=growth %p %i\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n",
    );
  return dir;
}

const houston = (consul: string, dir: string, ...args: string[]): number => houstonCli(consul, dir, "bench", ...args);

async function agentMemory(fleet: LocalFleet): Promise<{ rssMb: number; peakMb: number }> {
  const h = fleet.hosts[0]!.name;
  const pid = (await fleet.shell(h, "systemctl", "show", "-p", "MainPID", "--value", "houston-agent.service")).trim();
  const st = await fleet.shell(h, "cat", `/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? "0");
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

export async function growth(fleet: LocalFleet, sizes: number[], runs: number): Promise<GrowthResult[]> {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const out: GrowthResult[] = [];
  for (const n of sizes) {
    const first: number[] = [];
    const upgrade: number[] = [];
    let mem = { rssMb: 0, peakMb: 0 };
    for (let r = 0; r < runs; r++) {
      const v1 = config(n, "1");
      const v2 = config(n, "2");
      first.push(houston(fleet.consulAddr, v1, "standalone", "grow", "--timeout", "1800"));
      upgrade.push(houston(fleet.consulAddr, v2, "standalone", "grow", "--timeout", "1800"));
      mem = await agentMemory(fleet);
      houston(fleet.consulAddr, v1, "remove", "grow");
      for (const d of [v1, v2]) rmSync(d, { recursive: true, force: true });
    }
    const f = median(first);
    const u = median(upgrade);
    out.push({
      units: n,
      firstMs: f,
      upgradeMs: u,
      upgradeRatio: u / Math.max(1, f),
      agentRssMb: mem.rssMb,
      agentPeakMb: mem.peakMb,
    });
  }
  return out;
}
