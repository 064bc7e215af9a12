/**
 * Migrating from the original Houston 0.3.0, for real: the original itself (../shared/original-
 * houston, installed into a venv by its install.sh) deploys its example config dir — a global
 * unit, service `shop` with two dependencies and a file archive — on three systemd test hosts
 * running a REAL fleetd v1.0.0 (etcd on this machine) with Consul clients and Houston agents.
 * Then this Houston, through the built CLI with that config dir unchanged and default flags:
 * `adopt --yes`; a failing first deploy (a copy of the dir whose shop unit fails and whose files
 * differ) that must leave the original's shop@1 and its dependencies serving and its files as the
 * original wrote them; then `service shop 2`, which must replace them and the original's files;
 * then `global`, taking the global unit over in place. A probe from this machine (a process in
 * each web host's network namespace only, asking its loopback shop port) runs throughout: at
 * every moment at least one host answers. Without the original or the fleet binaries the suite is SKIPPED and says so.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, unitOptions } from "../../shared/fleet.js";
import { FLEET_BIN, fleetdAvailable } from "../harness/fleetd.js";
import { LocalFleet } from "../harness/local-fleet.js";
import { ROOT } from "../harness/paths.js";
import type { CliResult } from "../helpers/cli.js";
import { eventually } from "../helpers/specs.js";

const ORIGINAL = join(ROOT, "..", "shared", "original-houston");
const VENV = join(tmpdir(), "houston-original-0.3.0");
const original = existsSync(join(ORIGINAL, "install.sh")) && existsSync(join(ORIGINAL, "example-stack"));
const available = original && fleetdAvailable();
if (!available)
  process.stderr.write(
    `\n*** SKIPPED test/system/migrate.test.ts: ${original ? `no real fleet in ${FLEET_BIN} (scripts/install-fleet.sh)` : `no original Houston in ${ORIGINAL}`} ***\n\n`,
  );

const WEB = ["mg1", "mg2"];
const HOSTS = [...WEB, "mg3"];
const SHOP_FILES = ["/usr/local/lib/shop/server.py", "/usr/local/lib/shop/consul-register", "/etc/shop/shop.env"];
let fleet: LocalFleet;
let api: Fleet;
let dir = "";
beforeAll(async () => {
  if (!available) return;
  await promisify(execFile)("bash", [join(ORIGINAL, "install.sh"), VENV], { timeout: 300_000 });
  await LocalFleet.down("migrate");
  fleet = await LocalFleet.start({
    name: "migrate",
    hosts: [
      ...WEB.map((name) => ({ name, meta: { role: "web", service: "shop" } })),
      { name: "mg3", meta: { role: "db" } },
    ],
    fleetd: true,
  });
  api = new Fleet(fleet.fleetEndpoint);
  // the original's config dir as its users have it; only the two endpoints are this cluster's
  dir = mkdtempSync(join(tmpdir(), "houston-migrate-"));
  cpSync(join(ORIGINAL, "example-stack"), dir, { recursive: true });
  const manifest = join(dir, "manifest.yaml");
  writeFileSync(
    manifest,
    readFileSync(manifest, "utf8")
      .replace(/^(\s+consul:\s*)\S+/m, `$1${fleet.consulAddr}`)
      .replace(/^(\s+fleet:\s*)\S+/m, `$1${fleet.fleetEndpoint}`),
  );
}, 600_000);
afterAll(async () => fleet?.stop(), 120_000);

/** A command to its end: exit code and output (nothing waits on its speed). */
function runCommand(cmd: string, args: string[]): Promise<CliResult> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) =>
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })),
  );
}
/** the original, as its users ran it */
const theOriginal = (...args: string[]) => runCommand(join(VENV, "bin", "houston"), ["-c", dir, "-e", "lab", ...args]);
/** this Houston, the built CLI, at default flags: the manifest names Consul and fleet */
const ours = (configDir: string, ...args: string[]) =>
  runCommand(process.execPath, [join(ROOT, "dist", "houston.js"), "-c", configDir, "-e", "lab", ...args]);

const fleetUnits = async (): Promise<string[]> => (await api.units()).map((u) => u.name).sort();
/** unit → machines where fleet's /state says it is active */
async function activeInFleet(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const s of await api.states())
    if (s.systemdActiveState === "active") out.set(s.name, (out.get(s.name) ?? 0) + 1);
  return out;
}
/** inode, mode and a digest of the content of each of the shop's files on a host ("-": none) */
async function shopFiles(host: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of SHOP_FILES) {
    const stat = await fleet.shell(host, "stat", "-c", "%i %a", f).catch(() => "-");
    const text = await fleet.shell(host, "cat", f).catch(() => "");
    out[f] = `${stat.trim()} ${createHash("sha256").update(text).digest("hex").slice(0, 12)}`;
  }
  return out;
}

// ---- the probe: one process per web host, in that host's network namespace only ----------------
interface Sample {
  host: string;
  t: number;
  ok: boolean;
  answer: string;
}
// an answer within 10 s counts (a busy machine is slow, not down); each request is a new connection
const PROBE = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => { for (;;) {
  let ok = false, answer = "";
  try {
    const res = await fetch("http://127.0.0.1:8088/", { signal: AbortSignal.timeout(10000) });
    answer = (await res.text()).trim(); ok = res.status === 200;
    if (!ok) answer = res.status + " " + answer;
  } catch (e) { answer = String(e?.cause?.code ?? e?.name ?? e); }
  process.stdout.write(JSON.stringify({ t: Date.now(), ok, answer }) + "\\n");
  await sleep(50);
} })();`;
class Probe {
  readonly samples: Sample[] = [];
  readonly t0 = Date.now();
  private readonly children: ChildProcess[] = [];
  constructor(hosts: string[]) {
    for (const host of hosts) {
      const child = spawn("nsenter", [`--net=/run/netns/th-${host}`, process.execPath, "-e", PROBE], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let rest = "";
      child.stdout?.on("data", (d: Buffer) => {
        const lines = (rest + d.toString()).split("\n");
        rest = lines.pop() ?? "";
        for (const l of lines) this.samples.push({ host, ...(JSON.parse(l) as Omit<Sample, "host">) });
      });
      this.children.push(child);
    }
  }
  /** until the last 3 answers of each web host, all after `since`, are `answer` */
  async settled(answer: string, since = Date.now()): Promise<void> {
    for (const h of WEB)
      await eventually(`"${answer}" from ${h}`, async () => {
        const last = this.samples.filter((s) => s.host === h && s.t >= since).slice(-3);
        return last.length === 3 && last.every((s) => s.ok && s.answer === answer);
      });
  }
  /** Stops; says per host on stderr how many requests failed and when (seconds from the start). */
  stop(what: string): void {
    for (const c of this.children) if (c.exitCode === null) c.kill();
    for (const h of WEB) {
      const mine = this.samples.filter((s) => s.host === h);
      const failed = mine.filter((s) => !s.ok);
      const when = failed.slice(0, 8).map((s) => `+${((s.t - this.t0) / 1000).toFixed(2)} s ${s.answer}`);
      process.stderr.write(
        `probe during ${what}, ${h}: ${mine.length} requests, ${failed.length} failed${when.length ? `: ${when.join("; ")}` : ""}\n`,
      );
    }
  }
  /** Moments when no host answered: every host's latest answer a failure, as seconds from the start. */
  outages(): string[] {
    const latest = new Map<string, boolean>();
    const out: string[] = [];
    let down: number | null = null;
    const at = (t: number) => `+${((t - this.t0) / 1000).toFixed(2)} s`;
    for (const s of [...this.samples].sort((a, b) => a.t - b.t)) {
      latest.set(s.host, s.ok);
      const none = WEB.every((h) => latest.get(h) === false);
      if (none && down === null) down = s.t;
      if (!none && down !== null) {
        out.push(`${at(down)} to ${at(s.t)}`);
        down = null;
      }
    }
    if (down !== null) out.push(`${at(down)} to the end`);
    return out;
  }
}

/** Runs `fn` with the probe on; no moment without an answer from some web host. */
async function withoutOutage(what: string, fn: (probe: Probe) => Promise<void>): Promise<void> {
  const probe = new Probe(WEB);
  try {
    await fn(probe);
  } finally {
    probe.stop(what);
  }
  expect(probe.outages(), `moments when no web host answered shop during ${what}`).toEqual([]);
}

describe.skipIf(!available)(
  "migrating from the real original Houston 0.3.0 on a real fleet",
  { timeout: 600_000 },
  () => {
    const fileUnit = () =>
      `shop-file-deploy@${createHash("md5")
        .update(readFileSync(join(dir, "files", "service", "shop.yaml")))
        .digest("hex")
        .slice(0, 8)}.service`;
    const shopUnits = () => [fileUnit(), "shop-cache@1.4.service", "shop-queue@2.0.service", "shop@1.service"];
    const originals = () => ["beacon@1.service", ...shopUnits()];
    const before: Record<string, Record<string, string>> = {};

    it("the original deploys its global unit and shop 1 (its own config, its own command lines)", async () => {
      // what an operator put there besides: Houston must not touch it
      const foreign = "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n";
      await api.putUnit("foreign.service", unitOptions(foreign, "foreign"), "launched");
      await fleet.shell("mg1", "sh", "-c", "mkdir -p /etc/shop && echo mine > /etc/shop/operator.conf");
      const g = await theOriginal("global");
      expect(g.code, g.stdout + g.stderr).toBe(0);
      const s = await theOriginal("service", "shop", "1");
      expect(s.code, s.stdout + s.stderr).toBe(0);
      expect(s.stderr).toContain("Validated service is running with Consul");
      expect(await fleetUnits()).toEqual([...originals(), "foreign.service"].sort());
      const probe = new Probe(WEB);
      try {
        await probe.settled("shop 1 in lab", 0);
      } finally {
        probe.stop("the original's deploy");
      }
      for (const h of HOSTS) before[h] = await shopFiles(h);
      expect(before.mg3?.["/etc/shop/shop.env"]).toMatch(/^- /); // the db host has no shop
    });

    it("adopt takes over the original's units and its archive's files", async () => {
      const dry = await ours(dir, "adopt");
      expect(dry.code, dry.stderr).toBe(0);
      for (const u of originals()) expect(dry.stderr).toContain(`Would adopt ${u}`);
      expect(dry.stderr).toContain("Left alone: foreign.service");
      const yes = await ours(dir, "adopt", "--yes");
      expect(yes.code, yes.stderr).toBe(0);
      for (const u of originals()) expect(yes.stderr).toContain(`Adopted ${u}`);
      expect(yes.stderr).toContain(`houston/${fileUnit()}: ${[...SHOP_FILES].sort().join(", ")}`);
      expect(await fleetUnits()).toEqual([...originals(), "foreign.service"].sort());
    });

    it("a failing first deploy after adopt: the original's shop 1 and its dependencies keep serving", async () => {
      const bad = mkdtempSync(join(tmpdir(), "houston-migrate-bad-"));
      cpSync(dir, bad, { recursive: true });
      const unit = join(bad, "units", "service", "shop.service");
      writeFileSync(unit, readFileSync(unit, "utf8").replace(/^ExecStart=.*$/m, "ExecStart=/bin/false"));
      const files = join(bad, "files", "service", "shop.yaml"); // and it would change a file of the original's
      writeFileSync(files, readFileSync(files, "utf8").replace("SHOP_ENVIRONMENT={environment}", "SHOP_BROKEN=1"));
      let failedOn = "";
      await withoutOutage("the failing deploy", async (probe) => {
        const r = await ours(bad, "service", "shop", "2");
        expect(r.code, r.stderr).toBe(1);
        failedOn = /shop@2\.service failed on (mg[12])/.exec(r.stderr)?.[1] ?? "";
        expect(failedOn, r.stderr).not.toBe("");
        expect(r.stderr).not.toContain("nothing was deployed before");
        expect(r.stderr).not.toMatch(/Removing shop-(cache|queue)/); // the original's, of the same names
        expect(r.stderr).toContain(
          `Returned to what ran before: the original Houston's units adopted for shop run on as they were (${[...shopUnits()].sort().join(", ")})`,
        );
        await eventually("the failed deploy's own units gone from fleet", async () => {
          const names = await fleetUnits();
          return (
            !names.includes("shop@2.service") &&
            !names.some((n) => n.startsWith("shop-file-deploy@") && n !== fileUnit())
          );
        });
        expect(await fleetUnits()).toEqual([...originals(), "foreign.service"].sort());
        const active = await activeInFleet();
        for (const u of shopUnits()) expect(active.get(u), u).toBe(WEB.length);
        await probe.settled("shop 1 in lab");
      });
      // where the failed deploy's file unit wrote them, the original's files are put back as they were
      const content = (files: Record<string, string> | undefined) =>
        Object.entries(files ?? {}).map(([f, v]) => `${f} ${v.split(" ").slice(1).join(" ")}`);
      for (const h of HOSTS)
        await eventually(
          `the original's files on ${h} as the original wrote them`,
          async () => JSON.stringify(content(await shopFiles(h))) === JSON.stringify(content(before[h])),
        );
      // shop@2 needs the file unit: where it failed, the files were written, then put back (new inodes)
      const inodes = (files: Record<string, string> | undefined) =>
        Object.values(files ?? {}).map((v) => v.split(" ")[0]);
      const now = inodes(await shopFiles(failedOn));
      expect(now.map((inode, i) => inode !== inodes(before[failedOn])[i])).toEqual(SHOP_FILES.map(() => true));
    });

    it("service shop 2 with the unchanged config replaces the original's units and files", async () => {
      let r: CliResult = { code: -1, stdout: "", stderr: "" };
      await withoutOutage("the upgrade", async (probe) => {
        r = await ours(dir, "service", "shop", "2");
        expect(r.code, r.stderr).toBe(0);
        await eventually("the original's shop 1 and file unit gone from fleet", async () => {
          const names = await fleetUnits();
          return !names.includes("shop@1.service") && !names.includes(fileUnit());
        });
        await probe.settled("shop 2 in lab");
      });
      expect(r.stderr).toContain("Validated service is running with Consul");
      expect(r.stderr).toContain(`Destroying ${fileUnit()} (adopted from the original Houston)`);
      expect(r.stderr).toContain("Destroying shop@1.service (adopted from the original Houston)");
      // after "You're Go", their destruction in fleet is confirmed before the command exits
      expect(r.stderr).toMatch(
        /Confirming that fleet destroys .*shop@1\.service.* \(adopted from the original Houston/,
      );
      expect(r.stderr).toMatch(/shop@1\.service.* destroyed in fleet, [\d.]+s after the announcement/);
      expect(r.stderr.indexOf("You're Go")).toBeLessThan(r.stderr.indexOf("destroyed in fleet"));
      expect(r.stderr).toContain("shop-cache@1.4.service taken over in place");
      expect(r.stderr).toContain("shop-queue@2.0.service taken over in place");
      const names = await fleetUnits();
      const houstonsFileUnit = names.find((n) => n.startsWith("shop-file-deploy@")) ?? "";
      expect(names).toEqual(
        [
          ...["beacon@1.service", "foreign.service", "shop-cache@1.4.service", "shop-queue@2.0.service"],
          houstonsFileUnit,
          "shop@2.service",
        ].sort(),
      );
      // the dependencies taken over in place run as Houston wrote them (after its file unit)
      for (const dep of ["shop-cache@1.4.service", "shop-queue@2.0.service"])
        await eventually(`${dep} as Houston wrote it, active on both web hosts`, async () => {
          const options = (await api.unit(dep))?.options ?? [];
          const houstons = options.some((o) => o.name === "Requires" && o.value === houstonsFileUnit);
          return houstons && (await activeInFleet()).get(dep) === WEB.length;
        });
      const active = await activeInFleet();
      expect(active.get("shop@2.service")).toBe(WEB.length);
      expect(active.get("beacon@1.service")).toBe(HOSTS.length);
      expect(active.get("foreign.service")).toBe(HOSTS.length);
      // the original's files were replaced on the web hosts (new inodes; modes and content as the
      // unchanged config says); the db host and the operator's file were not touched
      for (const h of WEB) {
        const now = await shopFiles(h);
        for (const f of SHOP_FILES) {
          const [inode, mode, sum] = (now[f] ?? "").split(" ");
          const [inode0, mode0, sum0] = (before[h]?.[f] ?? "").split(" ");
          expect({ f, h, replaced: inode !== inode0, mode, sum }).toEqual({
            f,
            h,
            replaced: true,
            mode: mode0,
            sum: sum0,
          });
        }
      }
      expect(await shopFiles("mg3")).toEqual(before.mg3);
      expect((await fleet.shell("mg1", "cat", "/etc/shop/operator.conf")).trim()).toBe("mine");
      const st = await ours(dir, "status", "shop");
      expect(st.code, st.stderr).toBe(0);
      expect(st.stdout).toContain("shop@2.service");
    });

    it("global with the unchanged config takes the beacon over in place; nothing of the original is left", async () => {
      await withoutOutage("global", async (probe) => {
        const g = await ours(dir, "global");
        expect(g.code, g.stderr).toBe(0);
        expect(g.stderr).toContain("beacon@1.service taken over in place");
        await eventually(
          "beacon@1 active on every host",
          async () => (await activeInFleet()).get("beacon@1.service") === HOSTS.length,
        );
        await probe.settled("shop 2 in lab");
      });
      const again = await ours(dir, "adopt");
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain("Nothing to adopt");
      const owned = await fleet.consul.kvGet(fleet.kv.fleetOwned);
      const doc = JSON.parse(owned?.value.toString("utf8") ?? "{}") as { adopted?: object; adoptedFiles?: object };
      expect(Object.keys(doc.adopted ?? {})).toEqual([]);
      expect(doc.adoptedFiles).toBeUndefined();
    });

    it("remove, then the same stack deploys again: the files taken over stay shop's, not foreign", async () => {
      const rm = await ours(dir, "remove", "shop");
      expect(rm.code, rm.stderr).toBe(0);
      await eventually(
        "shop@2 gone from fleet",
        async () =>
          !(await fleet.consul.kvGet(fleet.kv.spec("shop"))) && !(await activeInFleet()).has("shop@2.service"),
      );
      const again = await ours(dir, "service", "shop", "2");
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toContain("was not created by Houston");
      expect(again.stderr).toContain("You're Go");
    });
  },
);
