/**
 * npm run bench -- [--only rollout|footprint|sockets|growth|archives|scale|fleet] [--runs N] [--smoke] [--sizes 10,50,200]
 * Answers users' questions with figures measured side by side in one run, on real systemd test
 * hosts and a real Consul (the machine is shared and noisy: ratios and medians, not best runs):
 *  - rollout: `houston service …` against the original Houston's control flow (seed-driver.ts) at
 *    its defaults (--delay 5, the file unit's sleep 30) and at --delay 1; first deploy and upgrade;
 *  - footprint: what the agent costs a host (idle RSS and peak, CPU while idle, bundle size, cold
 *    start);
 *  - sockets: failed requests during upgrades under load, with Socket= and without;
 *  - growth: a stack of 10, 50, 200 global units: first deploy, upgrade, the agent's memory after;
 *  - archives: a 20 MB archive to 10 hosts (its own fleet): time, MB/s, bytes moved, Consul memory;
 *  - scale: 10, 100, 1,000 agents (a load model: in-memory systemd) on one Consul, against the floor;
 *  - fleet: the real original Houston 0.3.0 against Houston through a real fleetd, with the
 *    original's own config dir (fleet-side-by-side.ts; its own cluster).
 * Prints a table and writes test-artifacts/bench.json. Never fails on a number (--smoke: tiny runs,
 * used by the test suite so this code cannot rot).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadDeploymentInputs } from "../../controller/config/load.js";
import { loadManifest } from "../../controller/config/manifest.js";
import { planDeployment } from "../../controller/plan/plan-deployment.js";
import { LocalFleet } from "../../test/harness/local-fleet.js";
import { ROOT } from "../../test/harness/paths.js";
import { seedDeploy, seedDeregister, type SeedOptions } from "./seed-driver.js";
import { replaceConfig, replaceUnderLoad, upgradeUnderLoad, zeroDowntimeConfig } from "./zero-downtime.js";
import { growth } from "./growth.js";
import { houstonCli } from "./cli.js";
import { archiveDelivery } from "./archives.js";
import { scale } from "./scale.js";
import { footprint } from "./footprint.js";
import { fleetSection } from "./fleet-side-by-side.js";

async function scaleSection(): Promise<void> {
  const rows = await scale(smoke ? [3] : [10, 100, 1000]);
  results.scale = rows;
  say(`\nControl-plane scale (LOAD MODEL: real agent code, in-memory systemd, one Consul dev agent):`);
  say(
    `  ${"agents".padEnd(8)}${"p50".padStart(9)}${"p99".padStart(9)}${"floor p99".padStart(11)}${"p99/floor".padStart(11)}${"requests".padStart(10)}${"per agent".padStart(11)}${"MB".padStart(8)}${"CPU agents".padStart(12)}${"CPU Consul".padStart(12)}`,
  );
  for (const r of rows)
    say(
      `  ${String(r.agents).padEnd(8)}${s(r.reportedP50Ms).padStart(9)}${s(r.reportedP99Ms).padStart(9)}${s(r.floorWrittenP99Ms).padStart(11)}${`${r.ratioToFloor.toFixed(1)}×`.padStart(11)}${String(r.requestsPerDeploy).padStart(10)}${r.requestsPerAgent.toFixed(1).padStart(11)}${r.mbMoved.toFixed(1).padStart(8)}${`${r.processCpuS.toFixed(1)} s`.padStart(12)}${`${r.consulCpuS.toFixed(1)} s`.padStart(12)}`,
    );
}

async function archivesSection(): Promise<void> {
  const r = await archiveDelivery(`${hostPrefix}a`, smoke ? 2 : 10, smoke ? 1 : 20);
  results.archives = r;
  say(`\nArchive delivery: ${r.archiveMb} MB to ${r.hosts} hosts at once:`);
  say(
    `  deploy ${s(r.firstMs)}, ${r.aggregateMbPerS.toFixed(1)} MB/s aggregate; ${r.mbToHostsFirst.toFixed(1)} MB reached the hosts`,
  );
  say(`  the same files again (a new unit version): ${r.mbToHostsSecond.toFixed(2)} MB reached the hosts`);
  say(`  Consul server RSS grew ${r.consulRssGrowthMb.toFixed(1)} MB`);
}

async function growthSection(fleet: LocalFleet): Promise<void> {
  const sizes = values.sizes ? values.sizes.split(",").map(Number) : smoke ? [3] : [10, 50, 200];
  const rows = await growth(fleet, sizes, runs);
  results.growth = rows;
  say(`\nCost as the stack grows (global units on ${fleet.hosts.length} hosts, medians of ${runs}):`);
  say(
    `  ${"units".padEnd(8)}${"first deploy".padStart(14)}${"upgrade".padStart(12)}${"upgrade/first".padStart(15)}${"agent RSS (peak)".padStart(20)}`,
  );
  for (const r of rows)
    say(
      `  ${String(r.units).padEnd(8)}${s(r.firstMs).padStart(14)}${s(r.upgradeMs).padStart(12)}${`${r.upgradeRatio.toFixed(2)}×`.padStart(15)}${`${r.agentRssMb.toFixed(0)} MB (${r.agentPeakMb.toFixed(0)})`.padStart(20)}`,
    );
}

async function zeroDowntime(fleet: LocalFleet): Promise<void> {
  const host = fleet.hosts[0]!.name;
  const [sf, ss] = await upgradeUnderLoad(fleet, host, zeroDowntimeConfig(), "zds", 8090);
  const [bf, bs] = await upgradeUnderLoad(fleet, host, zeroDowntimeConfig(), "zdb", 8091);
  const web = fleet.hosts.filter((h) => h.meta.role === "web").map((h) => h.name);
  const rep = await replaceUnderLoad(fleet, web, replaceConfig(), "zdr", 8092);
  results.zeroDowntime = {
    socket: { failed: sf, sent: ss, gapS: 0 },
    binding: { failed: bf, sent: bs },
    replace: rep,
  };
  say(`\nZero-downtime upgrades v1 → v2 → v3 under load (requests back to back):`);
  say(`  with Socket=                       ${sf} failed of ${ss} (one host)`);
  say(`  each version binding the port      ${bf} failed of ${bs} (one host, side by side, SO_REUSEPORT)`);
  say(`  stop then start (fixed ServicePort, default flags, ${web.length} hosts, each loaded):`);
  for (const h of rep.hosts)
    say(
      `    ${h.host}: ${h.failed} failed of ${h.sent}; gap while replaced ${h.gapsS.map((g) => `${g.toFixed(2)} s`).join(", ") || "none"} (Socket=: 0)`,
    );
  say(`    other hosts kept serving: ${rep.othersKeptServing ? "yes" : "NO (a moment when no host answered)"}`);
}

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    runs: { type: "string" },
    smoke: { type: "boolean" },
    prefix: { type: "string" },
    /** growth: the stack sizes (units per host), e.g. --sizes 200 */
    sizes: { type: "string" },
  },
});
// every config dir and archive the sections make goes under one directory, removed at the end
const scratch = mkdtempSync(join(tmpdir(), "houston-bench-"));
process.env.TMPDIR = scratch;
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));

const smoke = values.smoke === true;
const runs = Number(values.runs ?? (smoke ? "1" : "3"));
const only = values.only;
const hostPrefix = values.prefix ?? (smoke ? "bs" : "bench");
const results: Record<string, unknown> = {
  machine: { cores: execFileSync("nproc").toString().trim(), node: process.version },
  runs,
  smoke,
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const say = (m: string) => process.stderr.write(`${m}\n`);

const EXAMPLE = join(ROOT, "examples", "local");
const houston = (consul: string, ...args: string[]): number => houstonCli(consul, EXAMPLE, "local", ...args);

/**
 * The example with its units not ready-aware (Type=simple, as the seed's were): at default flags
 * each batch is then watched for --delay (5 s) after it is active. Set beside the ready-aware
 * example so that a faster figure is seen to come from readiness, not from looking away.
 */
const SIMPLE_EXAMPLE = (() => {
  const dir = mkdtempSync(join(tmpdir(), "houston-simple-example-"));
  cpSync(EXAMPLE, dir, { recursive: true });
  for (const sub of ["global", "service", "shared"])
    for (const f of readdirSync(join(dir, "units", sub))) {
      const path = join(dir, "units", sub, f);
      writeFileSync(
        path,
        readFileSync(path, "utf8")
          .replace(/^(Type=notify|NotifyAccess=all)\n/gm, "")
          .replaceAll("systemd-notify --ready; ", ""),
      );
    }
  return dir;
})();
const houstonSimple = (consul: string, ...args: string[]): number =>
  houstonCli(consul, SIMPLE_EXAMPLE, "local", ...args);

/** The example as the seed knew it: no shared socket (each version binds the port itself). */
const SEED_EXAMPLE = (() => {
  const dir = mkdtempSync(join(tmpdir(), "houston-seed-example-"));
  cpSync(EXAMPLE, dir, { recursive: true });
  const unit = join(dir, "units", "service", "example.service");
  // and its own port, so that nothing of the Houston runs before it can be in its way
  writeFileSync(
    unit,
    readFileSync(unit, "utf8")
      .replace(/^Socket=.*\n/m, "")
      .replaceAll("8080", "18080"),
  );
  return dir;
})();

function plan(version: string) {
  const req = {
    environment: "local",
    type: "service" as const,
    name: "example",
    version,
    group: null,
    dependencies: true,
  };
  const inputs = loadDeploymentInputs(SEED_EXAMPLE, req, loadManifest(SEED_EXAMPLE));
  return { plan: planDeployment(inputs, req), files: inputs.files };
}

/**
 * The units' own start time on the slowest host: systemd's job start → active
 * (InactiveExitTimestamp → ActiveEnterTimestamp) summed over the stack's units, which start in a
 * chain. A first deploy's wall time minus this is our overhead.
 */
async function unitStartMs(fleet: LocalFleet, hosts: string[], stack: string): Promise<number> {
  const e = await fleet.consul.kvGet(fleet.kv.spec(stack));
  const names = e
    ? (JSON.parse(e.value.toString("utf8")) as { units: { name: string }[] }).units.map((u) => u.name)
    : [];
  let worst = 0;
  for (const h of hosts) {
    let sum = 0;
    for (const name of names) {
      const out = await fleet.shell(
        h,
        "systemctl",
        "show",
        "-p",
        "InactiveExitTimestampMonotonic",
        "-p",
        "ActiveEnterTimestampMonotonic",
        name,
      );
      const v = (k: string) => Number(new RegExp(`^${k}=(\\d+)`, "m").exec(out)?.[1] ?? "0");
      const [exit, active] = [v("InactiveExitTimestampMonotonic"), v("ActiveEnterTimestampMonotonic")];
      if (exit > 0 && active >= exit) sum += (active - exit) / 1000;
    }
    worst = Math.max(worst, sum);
  }
  return worst;
}

async function rollout(fleet: LocalFleet): Promise<void> {
  const web = fleet.hosts.filter((h) => h.meta.role === "web").map((h) => h.name);
  const ours = { first: [] as number[], upgrade: [] as number[] };
  const simple = { first: [] as number[], upgrade: [] as number[] };
  const seed: Record<string, { first: number[]; upgrade: number[] }> = {};
  const settings: [string, SeedOptions][] = smoke
    ? [["seed --delay 1, no sleep 30 (smoke)", { delaySeconds: 1, maxTries: 30, fileSleepSeconds: 0 }]]
    : [
        ["seed at its defaults (--delay 5, sleep 30)", { delaySeconds: 5, maxTries: 15, fileSleepSeconds: 30 }],
        ["seed --delay 1", { delaySeconds: 1, maxTries: 75, fileSleepSeconds: 30 }],
      ];
  const unitsMs: number[] = [];
  const overhead: number[] = [];
  for (let r = 0; r < runs; r++) {
    ours.first.push(houston(fleet.consulAddr, "service", "example", `${r * 2 + 1}`));
    unitsMs.push(await unitStartMs(fleet, web, "example"));
    overhead.push((ours.first.at(-1) ?? 0) - (unitsMs.at(-1) ?? 0));
    ours.upgrade.push(houston(fleet.consulAddr, "service", "example", `${r * 2 + 2}`));
    houston(fleet.consulAddr, "remove", "example");
    simple.first.push(houstonSimple(fleet.consulAddr, "service", "example", `${r * 2 + 1}`));
    simple.upgrade.push(houstonSimple(fleet.consulAddr, "service", "example", `${r * 2 + 2}`));
    houstonSimple(fleet.consulAddr, "remove", "example");
    for (const [label, o] of settings) {
      const v1 = plan("s1");
      const v2 = plan("s2");
      const svc = (p: ReturnType<typeof plan>) => {
        const u = p.plan.units.find((x) => x.role === "service")!;
        return {
          name: `seed-${u.service!.name}`,
          port: u.service!.port!,
          tag: `version:${u.version}`,
          check: u.service!.checkHttp ?? `http://127.0.0.1:${u.service!.port!}/`,
        };
      };
      const entry = (seed[label] ??= { first: [], upgrade: [] });
      entry.first.push(await seedDeploy(fleet, web, v1.plan.units, v1.files, svc(v1), [], o));
      const replaced = v1.plan.units.filter((u) => !v2.plan.units.some((n) => n.name === u.name)).map((u) => u.name);
      entry.upgrade.push(await seedDeploy(fleet, web, v2.plan.units, v2.files, svc(v2), replaced, o));
      await seedDeregister(fleet, web, svc(v2).name);
      // clean up as the seed's world would not: its units and the files its file unit wrote
      const files = [...new Set([...v1.files, ...v2.files].map((f) => f.path))];
      const all = [...new Set([...v1.plan.units, ...v2.plan.units].map((u) => u.name))].reverse();
      await Promise.all(
        web.map((h) =>
          fleet.shell(
            h,
            "sh",
            "-c",
            [
              ...all.map((n) => `systemctl stop '${n}'; rm -f '/etc/systemd/system/${n}'`),
              ...files.map((f) => `rm -f '${f}'`),
            ].join("; ") + "; systemctl daemon-reload",
          ),
        ),
      );
    }
  }
  const rows: string[][] = [["", "first deploy", "upgrade", "first: seed / ours", "upgrade: seed / ours"]];
  rows.push(["houston, ready-aware units, default flags", s(median(ours.first)), s(median(ours.upgrade)), "", ""]);
  rows.push(["houston, Type=simple units, default flags", s(median(simple.first)), s(median(simple.upgrade)), "", ""]);
  const out: Record<string, unknown> = {
    ours: {
      firstMs: median(ours.first),
      upgradeMs: median(ours.upgrade),
      unitsStartMs: median(unitsMs),
      overheadMs: median(overhead),
    },
    simpleUnits: { firstMs: median(simple.first), upgradeMs: median(simple.upgrade) },
  };
  for (const [label, v] of Object.entries(seed)) {
    const f = median(v.first) / Math.max(1, median(ours.first));
    const u = median(v.upgrade) / Math.max(1, median(ours.upgrade));
    rows.push([label, s(median(v.first)), s(median(v.upgrade)), `${f.toFixed(1)}×`, `${u.toFixed(1)}×`]);
    out[label] = { firstMs: median(v.first), upgradeMs: median(v.upgrade), firstRatio: f, upgradeRatio: u };
  }
  results.rollout = out;
  say(`\nRollout of examples/local's service on ${web.length} hosts (medians of ${runs}):`);
  say(
    `  first deploy ${s(median(ours.first))}: the units' own start time (systemd job start → active, summed over the chain, slowest host) ${s(median(unitsMs))}, our overhead ${s(median(overhead))}`,
  );
  for (const r of rows)
    say(
      `  ${r[0]!.padEnd(44)} ${r
        .slice(1)
        .map((c) => c.padStart(22))
        .join("")}`,
    );
}

async function footprintSection(fleet: LocalFleet): Promise<void> {
  const f = await footprint(fleet, smoke ? 5 : 60, smoke ? 1 : 5);
  results.footprint = f;
  say(`\nThe agent on a host (real bundle, real systemd host, the host's Node ${process.version}):`);
  say(
    `  idle RSS ${f.idleRssMb.toFixed(1)} MB (peak ${f.peakRssMb.toFixed(1)} MB); CPU over ${f.idleSeconds} s idle ${f.idleCpuSeconds.toFixed(2)} s`,
  );
  say(
    `  bundle ${f.bundleKb.toFixed(0)} KB; start to --version with the unit's flags ${f.coldStartMs.toFixed(0)} ms (median)`,
  );
  if (f.imageRuntime)
    say(
      `  on the image's Node ${f.imageRuntime.node}: idle RSS ${f.imageRuntime.idleRssMb.toFixed(1)} MB (peak ${f.imageRuntime.peakRssMb.toFixed(1)} MB)`,
    );
  else say("  the image's Node: not measured (run npm run image once: it caches Node 24 and its better-sqlite3)");
}

if (!only || only === "scale") await scaleSection();
if (!only || only === "fleet") results.fleet = await fleetSection(`${hostPrefix}f`, runs, smoke, say);
if (only === "scale" || only === "fleet") {
  mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
  writeFileSync(join(ROOT, "test-artifacts", "bench.json"), JSON.stringify(results, null, 2));
  process.exit(0);
}
const fleet = await LocalFleet.start({
  hosts: [
    { name: `${hostPrefix}1`, meta: { role: "web" } },
    { name: `${hostPrefix}2`, meta: { role: "web" } },
    { name: `${hostPrefix}3`, meta: { role: "worker" } },
  ],
});
try {
  houston(fleet.consulAddr, "global");
  if (!only || only === "archives") await archivesSection();
  if (!only || only === "rollout") await rollout(fleet);
  if (!only || only === "footprint") await footprintSection(fleet);
  if (!only || only === "sockets") await zeroDowntime(fleet);
  if (!only || only === "growth") await growthSection(fleet);
} finally {
  await fleet.stop();
}
mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
writeFileSync(join(ROOT, "test-artifacts", "bench.json"), JSON.stringify(results, null, 2));
say(`\nwrote test-artifacts/bench.json`);
