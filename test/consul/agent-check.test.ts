/**
 * The agent's own Consul check, against a real Consul: a local user who takes the agent's HTTP
 * port while the agent is down (it exits when the port is taken, and systemd restarts it in a
 * loop) answers every request there. Such a squatter must not be able to keep the houston-agent
 * check passing, nor the scheduler-role session tied to it: only the agent itself passes its check.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registrar } from "../../agent/registrar.js";
import type { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { AGENT_SERVICE, SCHEMA_VERSION, type AgentRecord } from "../../shared/spec.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

let consul: TestConsul;
let c: Consul;
let squatter: Server;
let port: number;
let node: string;

beforeAll(async () => {
  consul = await startConsul();
  c = consul.client;
  node = (await c.agentSelf()).nodeName;
  // answers everything with 200 and a body like the agent's, as a squatter would
  squatter = createServer((_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end('{"ok":true}'));
  await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
  port = (squatter.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => squatter.close(() => r()));
  await consul?.stop();
});

const record = (): AgentRecord => ({ schema: SCHEMA_VERSION, node, meta: {}, version: "test", startedAt: "now" });

/** the houston-agent check's status, once it differs from `not` (blocking queries, no polling) */
async function statusOtherThan(not: string | null, signal: AbortSignal): Promise<string> {
  let index = 0;
  for (;;) {
    const r = await c.healthService(AGENT_SERVICE, { index, wait: "5s", signal });
    index = r.index;
    const check = r.entries[0]?.Checks.find((k) => k.CheckID === `service:${AGENT_SERVICE}`);
    if (check && check.Status !== not) return check.Status;
  }
}

describe("only the agent passes its own check", () => {
  it("a squatter on the agent's port neither passes the check before the agent is ready nor keeps it passing after it stopped", async () => {
    let ready = false;
    const agent = new AbortController();
    const registrar = new Registrar(c, new KvLayout("houston/"), () => undefined, { checkTtlSeconds: 2 });
    // the agent registers at start, before its first pass: not ready yet
    await registrar.registerAgent(record, { host: "127.0.0.1", port, ready: () => ready }, agent.signal);
    expect(await statusOtherThan(null, AbortSignal.timeout(20_000))).toBe("critical");
    // Consul runs an HTTP check at once when it is registered: the squatter would have passed it by now
    const first = await c.healthService(AGENT_SERVICE);
    expect(first.entries[0]?.Checks.find((k) => k.CheckID === `service:${AGENT_SERVICE}`)?.Status).toBe("critical");

    ready = true;
    registrar.agentReady();
    expect(await statusOtherThan("critical", AbortSignal.timeout(20_000))).toBe("passing");
    // the scheduler role's session is tied to this check, as the agent ties it
    const session = await c.sessionCreate({
      name: "role",
      ttlSeconds: 30,
      checks: ["serfHealth", `service:${AGENT_SERVICE}`],
    });
    expect(await c.sessionRenew(session)).toBe(true);

    // the agent dies; the squatter keeps answering on its port
    agent.abort();
    expect(await statusOtherThan("passing", AbortSignal.timeout(30_000))).toBe("critical");
    expect(await c.sessionRenew(session)).toBe(false);
  });
});
