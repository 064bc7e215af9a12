/**
 * A local user who takes the agent's HTTP port (9631) while the agent is down, on a real systemd
 * test host with a real Consul: the squatter answers every GET /health with 200, yet the
 * houston-agent check goes critical and stays so while the agent cannot listen (it exits, and
 * systemd restarts it in a loop); only the agent, back on its port, passes the check again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { AGENT_SERVICE } from "../../shared/spec.js";
import { eventually } from "../helpers/specs.js";

const HOST = "sq1";
let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: [{ name: HOST, meta: { role: "web" } }] });
});
afterAll(async () => fleet?.stop());

async function agentCheck(): Promise<string | undefined> {
  const { entries } = await fleet.consul.healthService(AGENT_SERVICE);
  return entries.find((e) => e.Node.Node === HOST)?.Checks.find((k) => k.CheckID === `service:${AGENT_SERVICE}`)
    ?.Status;
}
const restarts = async (): Promise<number> =>
  Number(await fleet.shell(HOST, "systemctl", "show", "-p", "NRestarts", "--value", "houston-agent.service"));

describe("a squatter on the agent's port", () => {
  it("cannot answer Consul's check for the agent", { timeout: 300_000 }, async () => {
    await fleet.waitForAgents();
    expect(await agentCheck()).toBe("passing");
    // the agent goes down for good (no restart), as between two restarts of a loop
    await fleet.shell(
      HOST,
      "sh",
      "-c",
      "mkdir -p /run/systemd/system/houston-agent.service.d && printf '[Service]\\nRestart=no\\n' > /run/systemd/system/houston-agent.service.d/no-restart.conf && systemctl daemon-reload && systemctl kill -s KILL houston-agent.service",
    );
    // an unprivileged local user takes the port and answers /health with 200
    await fleet.shell(
      HOST,
      "sh",
      "-c",
      "mkdir -p /tmp/squat && printf '{\"ok\":true}' > /tmp/squat/health && chmod -R a+rX /tmp/squat && systemd-run --unit squatter -p User=65534 -p Group=65534 /usr/bin/python3 -m http.server 9631 --bind 0.0.0.0 --directory /tmp/squat",
    );
    await eventually("the squatter to answer /health", async () =>
      (await fleet.shell(HOST, "curl", "-sf", "127.0.0.1:9631/health")).includes('"ok":true'),
    ).catch(async (err: unknown) => {
      const log = await fleet.shell(HOST, "sh", "-c", "systemctl status squatter; journalctl -u squatter -o cat");
      throw new Error(`${String(err)}\n${log}`);
    });
    expect(
      await eventually(
        "the houston-agent check to go critical while the squatter answers",
        async () => (await agentCheck()) === "critical",
        60_000,
      ),
    ).toBe(true);

    // the agent restarted while the port is taken: it exits, systemd restarts it, the check stays critical
    const before = await restarts();
    await fleet.shell(
      HOST,
      "sh",
      "-c",
      "rm -rf /run/systemd/system/houston-agent.service.d && systemctl daemon-reload && systemctl start houston-agent.service",
    );
    await eventually("the agent to fail on the taken port and be restarted", async () => (await restarts()) > before);
    const journal = await fleet.shell(HOST, "journalctl", "-u", "houston-agent", "--no-pager", "-o", "cat");
    expect(journal).toMatch(/cannot listen on [\d.]+:9631: .*EADDRINUSE/);
    expect(await agentCheck()).toBe("critical");

    // the squatter goes: the agent listens again and passes its own check
    await fleet.shell(HOST, "systemctl", "stop", "squatter.service");
    expect(
      await eventually("the houston-agent check to pass again", async () => (await agentCheck()) === "passing", 90_000),
    ).toBe(true);
  });
});
