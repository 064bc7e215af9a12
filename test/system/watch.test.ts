/**
 * "Confirmed" means the new units stood their window (issue 25), at default flags, on real
 * systemd hosts: global and standalone units that die 0.05 s, 1 s and 4.5 s after they start and a
 * crash-looping Restart=always unit all fail the rollout with their own log lines, and the
 * previous version, never pruned, keeps running (same process).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston, writeConfig } from "../helpers/cli.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "wt1", meta: { role: "web" } },
      { name: "wt2", meta: { role: "web" } },
    ],
  });
});
afterAll(async () => fleet?.stop());

const HOSTS = ["wt1", "wt2"];
const pid = async (host: string, unit: string) =>
  (await fleet.shell(host, "systemctl", "show", "-p", "MainPID", "--value", unit)).trim();

/** Version 1 runs for good; later versions say so in their journal and die `dies` seconds after they start. */
const dying = (version: number, dies: string, extra = "") =>
  version === 1
    ? `[Service]\nExecStart=/bin/sleep infinity\n${extra}\n[X-Fleet]\nGlobal=true\n`
    : `[Service]\nExecStart=/bin/sh -c 'echo version ${version} dies after ${dies}s; sleep ${dies}; exit 3'\n${extra}\n[X-Fleet]\nGlobal=true\n`;

const manifest = (version: number) =>
  `environments:\n  test: {}\nglobal-units: [pulse:${version}]\nshared-stacks:\n  lone: [dies:${version}]\n`;

describe("a rollout is confirmed only when what it started stays up (default flags)", () => {
  const dir = configDir({});
  const write = (version: number, dies: string, extra = "") =>
    writeConfig(dir, {
      "manifest.yaml": manifest(version),
      "units/global/pulse.service": dying(version, dies, extra),
      "units/shared/dies.service": dying(version, dies, extra),
    });
  const units = { global: "pulse", standalone: "lone-dies" } as const;
  const deployBoth = (...flags: string[]) =>
    Promise.all([
      houston(fleet.consulAddr, dir, ...flags, "global"),
      houston(fleet.consulAddr, dir, ...flags, "standalone", "lone"),
    ]);
  const pids = new Map<string, string>();

  beforeAll(async () => {
    write(1, "0");
    for (const r of await deployBoth()) expect(r.code, r.stderr).toBe(0);
    for (const h of HOSTS) for (const u of Object.values(units)) pids.set(`${h} ${u}`, await pid(h, `${u}@1.service`));
  });

  const failsAndKeepsV1 = async (version: number, dies: string, want: string) => {
    write(version, dies);
    const [g, s] = await deployBoth();
    for (const [kind, r] of [
      ["global", g],
      ["standalone", s],
    ] as const) {
      const unit = `${units[kind]}@${version}.service`;
      expect(r?.code, `${kind}: ${r?.stderr}`).toBe(1);
      expect(r?.stderr).toMatch(new RegExp(`ERROR +${unit.replace(/[.@]/g, "\\$&")} failed on wt[12]: ${want}`));
      expect(r?.stderr, "the unit's own log lines").toContain(`version ${version} dies after ${dies}s`);
      expect(r?.stderr).not.toContain("You're Go");
      for (const h of HOSTS) {
        const old = `${units[kind]}@1.service`;
        expect(await fleet.unitState(h, old), `${old} on ${h}`).toBe("active");
        expect(await pid(h, old), `${old} on ${h} never restarted`).toBe(pids.get(`${h} ${units[kind]}`));
      }
    }
  };

  it("dies 0.05 s after it starts", () => failsAndKeepsV1(2, "0.05", ".*failed \\(Result=exit-code\\)"));
  it("dies 1 s after it starts", () => failsAndKeepsV1(3, "1", ".*failed \\(Result=exit-code\\)"));
  // near the window's end: the host says whether the unit stood its window on its own clock, so a
  // report that reaches the controller late (a loaded machine) cannot hide the death
  it("dies 4.5 s after it starts: within the default window (--delay 5 s)", () =>
    failsAndKeepsV1(4, "4.5", ".*failed \\(Result=exit-code\\)"));

  it("a crash loop (Restart=always RestartSec=100ms) fails it though the unit keeps coming back", async () => {
    write(5, "0.5", "Restart=always\nRestartSec=100ms\n");
    const [g, s] = await deployBoth();
    for (const [r, u] of [
      [g, "pulse@5.service"],
      [s, "lone-dies@5.service"],
    ] as const) {
      expect(r?.code, r?.stderr).toBe(1);
      expect(r?.stderr).toMatch(
        new RegExp(
          `ERROR +${u.replace(/[.@]/g, "\\$&")} failed on wt[12]: .*(restarted \\(NRestarts|Result=start-limit-hit)`,
        ),
      );
      expect(r?.stderr).toContain("version 5 dies after 0.5s");
    }
    for (const h of HOSTS)
      for (const u of Object.values(units)) expect(await pid(h, `${u}@1.service`)).toBe(pids.get(`${h} ${u}`));
  });

  it("status heads with what is live, then the failed attempt", async () => {
    const st = await houston(fleet.consulAddr, dir, "status", "lone");
    const [head, attempt] = st.stdout.split("\n");
    expect(head).toMatch(/^lone: live: generation \d+, standalone lone/);
    expect(attempt).toMatch(
      /^ {2}last attempt rolled-back: generation \d+, standalone lone, \S+ ago: Deployment of .*lone-dies@5\.service failed/,
    );
  });

  it("a unit that stays up stands its window; one that fails later is marked and rollback skips it", async () => {
    writeConfig(dir, {
      "manifest.yaml": manifest(6),
      "units/shared/dies.service": "[Service]\nExecStart=/bin/sleep infinity\n[X-Fleet]\nGlobal=true\n",
    });
    const r = await houston(fleet.consulAddr, dir, "standalone", "lone");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Watching lone-dies@6.service for 5s (Type=simple, no readiness)");
    // after it stood its window, version 6 dies on one host
    await fleet.shell("wt1", "systemctl", "kill", "--signal=SIGKILL", "lone-dies@6.service");
    await expect.poll(() => fleet.unitState("wt1", "lone-dies@6.service"), { timeout: 20_000 }).toBe("failed");
    writeConfig(dir, {
      "manifest.yaml": manifest(7),
      "units/shared/dies.service":
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n",
    });
    const o = await houston(fleet.consulAddr, dir, "standalone", "lone");
    expect(o.code, o.stderr).toBe(0);
    expect(o.stderr).toMatch(
      /WARNING +generation \d+ of lone passed its window but failed later \(lone-dies@6\.service on wt1: lone-dies@6\.service failed\/failed \(Result=signal\)\)/,
    );
    expect(o.stderr, "a ready-aware unit needs no window").not.toContain("Watching");
    const hist = await houston(fleet.consulAddr, dir, "history", "lone");
    expect(hist.stdout).toMatch(/success, failed later \(lone-dies@6\.service on wt1\) +only by generation/);
    // rollback by default: not to 6 (failed later), not to the rolled-back attempts: to 1
    const rb = await houston(fleet.consulAddr, dir, "rollback", "lone");
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stderr).toMatch(/Rolling back lone to generation 1 /);
    for (const h of HOSTS) expect(await fleet.unitState(h, "lone-dies@1.service")).toBe("active");
  });
});
