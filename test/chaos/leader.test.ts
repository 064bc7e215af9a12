/**
 * Chaos: the Consul leader is lost mid-rollout. Three Consul servers on the machine (a real Raft
 * cluster, raft_multiplier = 1), the hosts' clients joined to all three; the controller talks to
 * a follower. The leader is killed by PID while the rollout waits on a unit. The rollout completes
 * or fails cleanly and says which; no lock is left; the spec is whole; the agents converge.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { Consul } from "../../shared/consul.js";
import { StackSpecSchema, StatusReportSchema, decodeJson } from "../../shared/spec.js";
import { configDir, startCli } from "../helpers/cli.js";
import { ROOT } from "../harness/paths.js";
import { eventually } from "../helpers/specs.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "cl1", meta: { role: "web" } },
      { name: "cl2", meta: { role: "web" } },
    ],
    servers: 3,
  });
});
afterAll(async () => fleet?.stop());

describe("chaos: Consul leader loss", () => {
  it("the leader is killed while a rollout waits on a unit: it completes or fails cleanly, no stale lock, agents converge", async () => {
    const leader = await fleet.leaderIndex();
    expect([0, 1, 2]).toContain(leader);
    const follower = [0, 1, 2].find((i) => i !== leader)!;
    const addr = fleet.serverAddrs[follower]!;
    const consul = new Consul({ addr });
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  lead: [quick:1]\n",
      // a singleton: following it goes through the scheduler's placements while the leader is lost
      "units/shared/quick.service": "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nMachineMetadata=role=web\n",
      // the service takes a few seconds to become ready: the leader dies meanwhile
      "units/service/lead.service":
        "[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'sleep 5; systemd-notify --ready; exec sleep infinity'\nTimeoutStartSec=120\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n",
    });
    const cli = startCli(addr, dir, ["-s", "service", "lead", "1"]);
    await eventually("the rollout to write its generation", async () =>
      (await consul.kvGet(fleet.kv.spec("lead")).catch(() => null))?.value.toString().includes("lead@1.service"),
    );
    await fleet.killServer(leader);
    const killed = Date.now();
    await eventually(
      "a new leader",
      async () => [0, 1, 2].filter((x) => x !== leader).includes(await fleet.leaderIndex(consul).catch(() => -1)),
      120_000,
    );
    const election = (Date.now() - killed) / 1000;
    const r = await cli.done;
    // completes (0) or fails cleanly (1), and says which; never a stack trace or a hang
    expect([0, 1], r.stderr).toContain(r.code);
    expect(r.stderr).toMatch(r.code === 0 ? /You're Go/ : /Deployment of lead 1 failed/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    await eventually(
      "no lock left",
      async () => (await consul.kvList(`${fleet.kv.prefix}locks/`)).every((e) => !e.session),
      120_000,
    );
    const entry = (await consul.kvGet(fleet.kv.spec("lead")))!;
    const spec = decodeJson(StackSpecSchema, entry.key, entry.value); // whole and valid
    await eventually(
      "the agents to converge on the live generation",
      async () => {
        for (const h of ["cl1", "cl2"]) {
          const e = await consul.kvGet(fleet.kv.stackStatus(h, "lead"));
          if (!e) return false;
          const rep = decodeJson(StatusReportSchema, e.key, e.value);
          if (rep.generation !== spec.generation || rep.converging) return false;
        }
        return true;
      },
      120_000,
    );
    const row = {
      case: "Consul leader loss",
      broken: "leader of 3 servers killed mid-rollout",
      electionSeconds: election,
      rollout: r.code === 0 ? "completed" : "failed cleanly",
      staleLocks: 0,
      spec: "whole",
    };
    process.stderr.write(`chaos: ${JSON.stringify(row)}\n`);
    mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
    writeFileSync(join(ROOT, "test-artifacts", "chaos-leader.json"), JSON.stringify(row, null, 2));
  }, 600_000);
});
