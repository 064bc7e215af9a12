/**
 * Stop, then start, host by host: a plain server binding its own fixed port (python3 -m
 * http.server) on two real systemd test hosts, upgraded v1 → v2 → v3 at default flags while a
 * bounded request loop from this machine (outside the hosts) asks both hosts again and again: at
 * every moment at least one host answers; back to an earlier version (rollback, or a deploy of v1)
 * each host replaces the live one. A v2 that fails under stop-then-start has v1 restored on the
 * host it replaced. A service's units stay together: a singleton service and its singleton
 * dependency land on one machine; a dependency with metadata of its own lands elsewhere, and plan
 * and the rollout warn about the Requires= dropped there.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { get } from "../../scripts/bench/zero-downtime.js";
import { configDir, houston, startCli, writeConfig } from "../helpers/cli.js";

const HOSTS = ["up1", "up2"];
let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "up1", meta: { role: "web" } },
      { name: "up2", meta: { role: "web", disk: "ssd" } },
    ],
  });
});
afterAll(async () => fleet?.stop());

const server = (port: number, exec = `/usr/bin/python3 -m http.server ${port}`) =>
  `[Unit]\nDescription=plain server %i\n\n[Service]\nExecStart=${exec}\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=${port}\nServiceCheckInterval=1s\n`;
const activeOn = async (unit: string): Promise<string[]> => {
  const on: string[] = [];
  for (const h of HOSTS) if ((await fleet.unitState(h, unit)) === "active") on.push(h);
  return on;
};

describe("stop then start, host by host (a fixed port without Socket=)", () => {
  it("v1 → v2 → v3 at default flags: one host out at a time, the other keeps answering", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  up: []\n",
      "units/service/up.service": server(8081),
    });
    const plan = await houston(fleet.consulAddr, dir, "plan", "service", "up", "1");
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toMatch(
      /Upgrade of up@\*: fixed port 8081 and no Socket=: stop then start, one host at a time/,
    );
    const first = await houston(fleet.consulAddr, dir, "service", "up", "1");
    expect(first.code, first.stderr).toBe(0);
    const ips = HOSTS.map((h) => fleet.host(h).ip);
    let upgrading = true;
    const outputs: string[] = [];
    const upgrades = (async () => {
      try {
        for (const v of ["2", "3"]) {
          const r = await startCli(fleet.consulAddr, dir, ["service", "up", v]).done;
          outputs.push(r.stderr);
          if (r.code !== 0) throw new Error(`upgrade to ${v} failed: ${r.stderr}`);
        }
      } finally {
        upgrading = false;
      }
    })();
    // bounded: at most 20,000 rounds, ends with the upgrades; each round asks both hosts at once
    let rounds = 0;
    let noneAnswered = 0;
    const gaps = HOSTS.map(() => 0);
    while (upgrading && rounds < 20_000) {
      rounds++;
      const answers = await Promise.all(ips.map((ip) => get(ip, 8081)));
      answers.forEach((ok, i) => {
        if (!ok) gaps[i]!++;
      });
      if (!answers.some(Boolean)) noneAnswered++;
    }
    await upgrades;
    process.stderr.write(
      `stop then start: ${rounds} rounds, none answered in ${noneAnswered}; per host failed ${gaps.join(", ")}\n`,
    );
    expect(rounds).toBeGreaterThan(50);
    expect(noneAnswered).toBe(0);
    for (const [i, out] of outputs.entries()) {
      expect(out).toMatch(
        new RegExp(`Replacing up@${i + 1}\\.service with up@${i + 2}\\.service on up1: stop, then start`),
      );
      expect(out).toMatch(new RegExp(`Replacing up@${i + 1}\\.service with up@${i + 2}\\.service on up2`));
      expect(out).toContain(`Destroying up@${i + 1}.service`);
    }
    expect(await activeOn("up@3.service")).toEqual(HOSTS);
    expect(await activeOn("up@2.service")).toEqual([]);
    expect(await activeOn("up@1.service")).toEqual([]);
  }, 600_000);

  it("back to an earlier version (rollback, then a deploy of v1): each host replaces the live one", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  up: []\n",
      "units/service/up.service": server(8081),
    });
    // v3 runs, as the test above left it: it replaced v2, which replaced v1
    const rb = await houston(fleet.consulAddr, dir, "rollback", "up");
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stderr).toMatch(/Replacing up@3\.service with up@2\.service on up1: stop, then start/);
    expect(await activeOn("up@2.service")).toEqual(HOSTS);
    expect(await activeOn("up@3.service")).toEqual([]);
    const back = await houston(fleet.consulAddr, dir, "service", "up", "1");
    expect(back.code, back.stderr).toBe(0);
    expect(await activeOn("up@1.service")).toEqual(HOSTS);
    expect(await activeOn("up@2.service")).toEqual([]);
    for (const ip of HOSTS.map((h) => fleet.host(h).ip)) expect(await get(ip, 8081)).toBe(true);
    const st = await houston(fleet.consulAddr, dir, "status", "up");
    expect(st.code, st.stdout).toBe(0);
  }, 600_000);

  it("a v2 that fails under stop-then-start: v1 is restored on the host it replaced, the other never lost it", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  upf: []\n",
      "units/service/upf.service": server(8082),
    });
    expect((await houston(fleet.consulAddr, dir, "service", "upf", "1")).code).toBe(0);
    writeConfig(dir, { "units/service/upf.service": server(8082, "/bin/sh -c 'echo broken-on-purpose; exit 3'") });
    const r = await houston(fleet.consulAddr, dir, "service", "upf", "2");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Replacing upf@1\.service with upf@2\.service on up1/);
    expect(r.stderr).not.toMatch(/on up2: stop, then start/); // the failure stopped the rollout at the first host
    expect(r.stderr).toMatch(/upf@2\.service failed on up1/);
    expect(await activeOn("upf@1.service")).toEqual(HOSTS);
    expect(await activeOn("upf@2.service")).toEqual([]);
    for (const ip of HOSTS.map((h) => fleet.host(h).ip)) expect(await get(ip, 8082)).toBe(true);
  }, 600_000);
});

const sleeper = (xfleet: string) =>
  `[Unit]\nDescription=%p %i\n\n[Service]\nExecStart=/bin/sleep infinity\n${xfleet ? `\n[X-Fleet]\n${xfleet}\n` : ""}`;

describe("a service's units stay together", () => {
  it("a singleton service and its singleton dependency land on one machine, nothing is dropped", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  hello: [store:1]\n",
      "units/shared/store.service": sleeper(""),
      "units/service/hello.service": sleeper(""),
    });
    const plan = await houston(fleet.consulAddr, dir, "plan", "service", "hello", "1");
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).not.toMatch(/dropped/);
    const r = await houston(fleet.consulAddr, dir, "-s", "service", "hello", "1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/dropped/);
    const on = await activeOn("hello@1.service");
    expect(on).toHaveLength(1);
    expect(await activeOn("hello-store@1.service")).toEqual(on);
    // the Requires= on the store is kept in the unit the host runs
    expect(await fleet.shell(on[0]!, "systemctl", "show", "-p", "Requires", "--value", "hello@1.service")).toMatch(
      /hello-store@1\.service/,
    );
  }, 300_000);

  it("a dependency with metadata of its own lands elsewhere: plan and the rollout warn, naming both", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  apart: [store:1]\n",
      "units/shared/store.service": sleeper("MachineMetadata=disk=ssd"),
      "units/service/apart.service": sleeper("MachineID=up1"),
    });
    const warning =
      /apart@1\.service needs apart-store@1\.service \(Requires=\/After=\), but on up1 it runs without it \(apart-store@1\.service runs on up2\): the dependency is dropped there\. To keep them together, .*MachineOf=apart-store@1\.service/;
    const plan = await houston(fleet.consulAddr, dir, "plan", "service", "apart", "1");
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toMatch(warning);
    const r = await houston(fleet.consulAddr, dir, "-s", "service", "apart", "1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(warning);
    expect(await activeOn("apart@1.service")).toEqual(["up1"]);
    expect(await activeOn("apart-store@1.service")).toEqual(["up2"]);
  }, 300_000);
});
