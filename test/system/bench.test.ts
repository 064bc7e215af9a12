/**
 * A smoke run of `npm run bench` (tiny: one run, --delay 1, no sleep 30, 5 s idle) so that the
 * benchmark code cannot rot. The figures are not judged here: benchmarks never fail on a number.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../harness/paths.js";

describe("npm run bench (smoke)", () => {
  it("runs every section (rollout, footprint, sockets, growth, archives, scale, fleet) and writes its JSON", () => {
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "scripts", "bench", "run.ts"), "--smoke", "--prefix", "bt"],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/houston, ready-aware units, default flags/);
    expect(r.stderr).toMatch(/houston, Type=simple units, default flags/);
    const json = JSON.parse(readFileSync(join(ROOT, "test-artifacts", "bench.json"), "utf8")) as {
      rollout: { ours: { firstMs: number } };
      footprint: { idleRssMb: number };
      zeroDowntime: {
        socket: { failed: number; sent: number };
        replace: { hosts: { host: string; sent: number; gapsS: number[] }[]; othersKeptServing: boolean };
      };
      /** null when the fleet binaries are not installed (the section says it is skipped) */
      fleet: { upgrade: { originalMs: number; houstonMs: number }; toGo: { upgrade: { houstonMs: number } } } | null;
      growth: { units: number; firstMs: number }[];
      archives: { mbToHostsFirst: number; mbToHostsSecond: number };
      scale: { agents: number; reportedP99Ms: number; requestsPerDeploy: number }[];
    };
    expect(json.rollout.ours.firstMs).toBeGreaterThan(0);
    expect(json.footprint.idleRssMb).toBeGreaterThan(0);
    expect(json.zeroDowntime.socket.sent).toBeGreaterThan(0);
    // stop then start on both web hosts, each loaded: a gap per host is reported
    expect(json.zeroDowntime.replace.hosts.map((h) => h.sent > 0)).toEqual([true, true]);
    expect(r.stderr).toMatch(/other hosts kept serving: (yes|NO)/);
    if (json.fleet) {
      expect(json.fleet.upgrade.originalMs).toBeGreaterThan(0);
      expect(json.fleet.toGo.upgrade.houstonMs).toBeLessThanOrEqual(json.fleet.upgrade.houstonMs);
      expect(r.stderr).toMatch(/original confirms before it returns/);
    } else expect(r.stderr).toMatch(/fleet section SKIPPED/);
    expect(json.growth[0]?.firstMs).toBeGreaterThan(0);
    // the archive reached both hosts (1 MB each); the same files again moved far less
    expect(json.archives.mbToHostsFirst).toBeGreaterThan(1.5);
    expect(json.archives.mbToHostsSecond).toBeLessThan(json.archives.mbToHostsFirst / 4);
    expect(json.scale[0]?.requestsPerDeploy).toBeGreaterThan(0);
  }, 900_000);
});
