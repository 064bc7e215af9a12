/**
 * One compromised host cannot keep the scheduler role (issue 24 §3): with ACLs on (default deny)
 * and its agent token from `houston acl bootstrap-tokens`, a host can take scheduler/leader with a
 * session that has no checks and no TTL (it would hold the role forever, even after its token is
 * revoked). Such a holder is not the scheduler: checkLeader names it (by the session's node, not
 * the record's body) and why, and `houston nodes` says its role is ignored. A holder whose session
 * is bound to its node's serfHealth and its agent's check is the scheduler as before.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { HOLDER_CHECKS, checkLeader } from "../../shared/stores/leader.js";
import { bootstrapTokens, configDir, houston } from "../helpers/cli.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

const MASTER = "h0lder-master-token";
let consul: TestConsul;
let tokens: Record<string, string> = {};
let node = "";
const kv = new KvLayout("houston/");
const dir = configDir({
  "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web: [app:1]\n",
  "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
});

beforeAll(async () => {
  consul = await startConsul(
    ["-hcl", `acl { enabled = true default_policy = "deny" tokens { master = "${MASTER}" agent = "${MASTER}" } }`],
    MASTER,
  );
  node = (await consul.client.agentSelf()).nodeName;
  tokens = await bootstrapTokens(consul.addr, dir, MASTER, [node, "honest"]);
});
afterAll(async () => consul?.stop());

const as = (role: string) => new Consul({ addr: consul.addr, token: tokens[role] });

describe("the scheduler role's holder must be bound to its health", () => {
  it("a session without checks and TTL takes the role; it is named and ignored, also after its token is revoked", async () => {
    const rogue = as(`agent-${node}`);
    const res = await rogue.request("PUT", "/v1/session/create", {
      body: JSON.stringify({ Name: "forever", Checks: [], Behavior: "release", LockDelay: "0s" }),
    });
    expect(res.status, res.body.toString()).toBe(200);
    const session = (JSON.parse(res.body.toString()) as { ID: string }).ID;
    // its record claims to be another node: who holds the role is the session's node
    const record = JSON.stringify({ node: "honest", since: "t" });
    expect(await rogue.kvPut(kv.schedulerLeader, record, { acquire: session })).toBe(true);

    const seen = await checkLeader(as("agent-honest"), kv);
    expect(seen.session).toBe(session);
    expect(seen.node).toBe(node);
    expect(seen.problem).toBe("a session without health checks");

    // revoking its token does not end such a session: the shape check is what keeps it out
    const self = await rogue.request("GET", "/v1/acl/token/self");
    const id = (JSON.parse(self.body.toString()) as { AccessorID: string }).AccessorID;
    expect((await consul.client.request("DELETE", `/v1/acl/token/${id}`)).status).toBe(200);
    expect((await checkLeader(as("agent-honest"), kv)).problem).toBe("a session without health checks");

    const r = await houston(consul.addr, dir, "--token", tokens.operator!, "nodes");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`scheduler: ${node} `);
    expect(r.stderr).toContain(
      `scheduler role held by ${node} with a session without health checks: ignored (its placements are not taken in; destroy session ${session} to free the role)`,
    );
    await consul.client.sessionDestroy(session);
  });

  it("a session bound to serfHealth and the agent's own check is the scheduler", async () => {
    const c = consul.client;
    const reg = await c.request("PUT", "/v1/agent/service/register", {
      body: JSON.stringify({
        ID: "houston-agent",
        Name: "houston-agent",
        Check: { CheckID: "service:houston-agent", TTL: "30s" },
      }),
    });
    expect(reg.status, reg.body.toString()).toBe(200);
    await c.agentCheckUpdate("service:houston-agent", "passing", "ok");
    const session = await c.sessionCreate({ name: "ok", ttlSeconds: 15, checks: [...HOLDER_CHECKS] });
    expect(await c.kvPut(kv.schedulerLeader, JSON.stringify({ node, since: "t" }), { acquire: session })).toBe(true);
    const seen = await checkLeader(as("agent-honest"), kv);
    expect(seen).toMatchObject({ session, node, problem: null });
    const r = await houston(consul.addr, dir, "--token", tokens.operator!, "nodes");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/ignored/);
  });
});
