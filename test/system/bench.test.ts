/**
 * A smoke run of `npm run bench` (tiny: one run, --delay 1, no sleep 30, 5 s idle) so that the
 * benchmark code cannot rot. The figures are not judged here: benchmarks never fail on a number.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/consul.js";

describe("npm run bench (smoke)", () => {
  it("runs the rollout comparison, the footprint and the socket upgrades, and writes its JSON", () => {
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "scripts", "bench", "run.ts"), "--smoke", "--prefix", "bt"],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/houston \(ours\)/);
    const json = JSON.parse(readFileSync(join(ROOT, "test-artifacts", "bench.json"), "utf8")) as {
      rollout: { ours: { firstMs: number } };
      footprint: { idleRssMb: number };
      zeroDowntime: { socket: { failed: number; sent: number } };
    };
    expect(json.rollout.ours.firstMs).toBeGreaterThan(0);
    expect(json.footprint.idleRssMb).toBeGreaterThan(0);
    expect(json.zeroDowntime.socket.sent).toBeGreaterThan(0);
  }, 900_000);
});
