/**
 * `houston history` through the built CLI against a real Consul: without a stack it lists every
 * stack's last deployments (as `status` lists every stack); generations agree with `status` (a
 * deployment whose prune wrote the next generation shows `6→7`); an interrupted deploy's row shows.
 * `status` names the stacks that run nothing because their deploy failed, from the same rows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { SCHEMA_VERSION, type HistoryRecord, type StackSpec } from "../../shared/spec.js";
import { putHistory } from "../../shared/stores/history.js";
import { writeSpec } from "../../shared/stores/specs.js";
import { configDir, houston } from "../helpers/cli.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

let consul: TestConsul;
const kv = new KvLayout("houston/");
const dir = configDir({ "manifest.yaml": "environments:\n  test: {}\n" });

const record = (
  stack: string,
  generation: number,
  finalGeneration: number | null,
  result: HistoryRecord["result"],
  version: string,
): HistoryRecord => ({
  schema: SCHEMA_VERSION,
  stack,
  generation,
  environment: "test",
  deployment: { type: "service", name: stack, version, group: null },
  user: "tester",
  startedAt: "2026-01-01T00:00:00.000Z",
  finishedAt: "2026-01-01T00:00:05.000Z",
  durationMs: 5000,
  result,
  message: `${result} ${stack} ${version}`,
  units: [],
  finalGeneration,
});

beforeAll(async () => {
  consul = await startConsul();
  const c = new Consul({ addr: consul.addr, token: "" });
  for (let v = 1; v <= 7; v++) await putHistory(c, kv, record("web", 2 * v - 1, 2 * v, "success", String(v)));
  await putHistory(c, kv, record("api", 1, 1, "success", "1"));
  await putHistory(c, kv, record("api", 2, 2, "interrupted", "2"));
  await putHistory(c, kv, record("sick", 1, 2, "rolled-back", "1"));
});
afterAll(async () => consul?.stop());

describe("houston history", () => {
  it("without a stack: every stack's last deployments, with the generations they wrote", async () => {
    const r = await houston(consul.addr, dir, "history");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^STACK +GENERATION +RESULT/);
    expect(lines.filter((l) => l.startsWith("api "))).toHaveLength(2);
    expect(r.stdout).toMatch(/\napi +2 +interrupted .*interrupted api 2/);
    // the last 5 of web's 7, each with the prune generation it ended with
    const web = lines.filter((l) => l.startsWith("web "));
    expect(web.map((l) => l.split(/ +/)[1])).toEqual(["5→6", "7→8", "9→10", "11→12", "13→14"]);
    expect(r.stdout).toMatch(/A→B: the deployment wrote generation A and ended with B live/);
    expect(r.stdout).toMatch(/houston history STACK shows all \(web: 7\)/);
  });

  it("with a stack: all of its deployments, no STACK column", async () => {
    const r = await houston(consul.addr, dir, "history", "web");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^GENERATION +RESULT/);
    expect(r.stdout.split("\n").filter((l) => /^\d+→\d+ +success/.test(l))).toHaveLength(7);
  });

  it("--json without a stack: every stack's rows, each naming its stack", async () => {
    const r = await houston(consul.addr, dir, "--json", "history");
    const rows = JSON.parse(r.stdout) as { stack: string; generation: number; result: string }[];
    expect(rows.map((x) => `${x.stack}:${x.generation}:${x.result}`)).toEqual([
      "api:1:success",
      "api:2:interrupted",
      "sick:1:rolled-back",
      "web:5:success",
      "web:7:success",
      "web:9:success",
      "web:11:success",
      "web:13:success",
    ]);
  });

  it("nothing recorded", async () => {
    const r = await houston(consul.addr, dir, "--prefix", "empty/", "history");
    expect(r.stdout.trim()).toBe("no deployments recorded");
  });
});

describe("status of stacks that run nothing", () => {
  it("without a stack: each one whose last attempt failed, with that attempt (exit 0: nothing runs)", async () => {
    const r = await houston(consul.addr, dir, "status");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^api: nothing live; last attempt interrupted: generation 2, service api 2, \S+ ago: interrupted api 2$/m,
    );
    expect(r.stdout).toMatch(
      /^sick: nothing live; last attempt rolled-back: generation 1, service sick 1, .*: rolled-back sick 1$/m,
    );
    expect(r.stdout, "a stack whose last deployment succeeded").not.toMatch(/^web/m);
    expect(r.stdout).not.toContain("no stacks deployed");
  });

  it("STACK whose first deploy failed: not deployed, the attempt, exit 1", async () => {
    const r = await houston(consul.addr, dir, "status", "sick");
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      /^stack sick is not deployed; last attempt rolled-back: generation 1, \S+ ago: rolled-back sick 1/,
    );
    const j = await houston(consul.addr, dir, "--json", "status", "sick");
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({
      healthy: false,
      neverLive: [{ stack: "sick", failedAttempt: { result: "rolled-back" } }],
    });
  });

  it("STACK whose last deployment succeeded and whose spec is gone (removed): not deployed, exit 0", async () => {
    const r = await houston(consul.addr, dir, "status", "web");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("stack web is not deployed");
  });

  it("STACK no deployment ever used (a typo): says so with the stacks that have a history, exit 1", async () => {
    const r = await houston(consul.addr, dir, "status", "wbe");
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout.trim()).toMatch(
      /^stack wbe is not deployed and no deployment of it is recorded \(stacks with a history: .*\bweb\b.*\)$/,
    );
    const j = await houston(consul.addr, dir, "--json", "status", "wbe");
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ healthy: false, stacks: [], neverLive: [] });
    const none = await houston(consul.addr, dir, "--prefix", "empty/", "status");
    expect(none.stdout.trim()).toBe("no stacks deployed");
  });
});

describe("status of a stack fleet runs nowhere", () => {
  it("a global unit of a fleet stack that fleet has placed on no machine is not placed: exit 1, not an empty table and 0", async () => {
    const c = new Consul({ addr: consul.addr, token: "" });
    const spec: StackSpec = {
      schema: SCHEMA_VERSION,
      stack: "beacons",
      generation: 3,
      environment: "test",
      deployment: { type: "standalone", name: "beacons", version: null, group: null },
      createdAt: "2026-01-01T00:00:00.000Z",
      scheduler: "fleet",
      units: [
        {
          name: "beacons-beacon@1.service",
          stack: "beacons",
          component: "beacon",
          group: null,
          version: "1",
          role: "dependency",
          text: "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n",
          placements: [{ global: true, metadata: {} }],
        },
      ],
    };
    await writeSpec(c, kv, spec, { modifyIndex: 0, signer: null });
    const doc: PlacementDoc = {
      schema: 1,
      stack: "beacons",
      generation: 3,
      units: {},
      unplaced: {},
      moves: [],
      scheduler: "fleet (mirrored by h1)",
      updatedAt: "2026-01-01T00:00:00.000Z",
      note: "fleet at unix:///var/run/fleet.sock: connect ENOENT (retrying)",
    };
    await c.kvPut(kv.placement("beacons"), JSON.stringify(doc));
    const r = await houston(consul.addr, dir, "status", "beacons");
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/beacons-beacon@1\.service +unplaced +not placed yet/);
  });
});
