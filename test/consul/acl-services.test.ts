/**
 * One compromised host cannot register foreign services (issue 24 §3): with ACLs on (default deny)
 * and the agent tokens `houston acl bootstrap-tokens` makes for a config, an agent registers
 * houston-* (its own houston-agent with its TTL check, houston-<stack>) and the services the
 * config's stacks may declare (<stack>, <stack>-*), and Consul refuses any other name (`vault`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consul } from "../../shared/consul.js";
import { bootstrapTokens, configDir, houston } from "../helpers/cli.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

const MASTER = "s3rvices-master-token";
let consul: TestConsul;
let tokens: Record<string, string> = {};
const dir = configDir({
  "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  shop: [app:1]\n",
  "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Houston]\nServiceName=shop-api\n",
  "units/service/web.service": "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Houston]\nServicePort=8088\n",
});

beforeAll(async () => {
  consul = await startConsul(
    ["-hcl", `acl { enabled = true default_policy = "deny" tokens { master = "${MASTER}" agent = "${MASTER}" } }`],
    MASTER,
  );
  tokens = await bootstrapTokens(consul.addr, dir, MASTER, ["n1"]);
});
afterAll(async () => consul?.stop());

const register = (token: string | undefined, name: string, check?: object) =>
  new Consul({ addr: consul.addr, token }).request("PUT", "/v1/agent/service/register", {
    body: JSON.stringify({ ID: name, Name: name, Port: 1, ...(check ? { Check: check } : {}) }),
  });

describe("an agent registers only Houston's services", () => {
  it("a foreign name is refused, whatever it claims", async () => {
    for (const name of ["vault", "consul", "shopx", "webhook", "api"]) {
      const r = await register(tokens["agent-n1"], name, { TTL: "30s", Status: "passing" });
      expect(r.status, `${name}: ${r.body.toString()}`).toBe(403);
    }
    const health = await consul.client.healthService("vault");
    expect(health.entries).toEqual([]);
  });

  it("houston-agent with its TTL check (kept passing by the agent), houston-<stack> and the declared names are registered", async () => {
    const agent = new Consul({ addr: consul.addr, token: tokens["agent-n1"] });
    const own = await register(tokens["agent-n1"], "houston-agent", {
      CheckID: "service:houston-agent",
      TTL: "30s",
    });
    expect(own.status, own.body.toString()).toBe(200);
    await agent.agentCheckUpdate("service:houston-agent", "passing", "ok");
    for (const name of ["houston-shop", "houston-web", "shop", "shop-api", "web", "web-admin"]) {
      const r = await register(tokens["agent-n1"], name, { TTL: "30s" });
      expect(r.status, `${name}: ${r.body.toString()}`).toBe(200);
    }
    const h = await consul.client.healthService("houston-agent");
    expect(h.entries[0]?.Checks.find((c) => c.CheckID === "service:houston-agent")?.Status).toBe("passing");
  });

  it("acl policies grants the config's stacks and each --stack, and nothing else", async () => {
    const r = await houston(consul.addr, dir, "acl", "policies", "--node", "n1", "--stack", "extra");
    expect(r.code, r.stderr).toBe(0);
    const hcl = r.stdout.split(/^##### /m).find((b) => b.startsWith("houston-agent-n1.hcl"))!;
    const writes = [...hcl.matchAll(/^(service|service_prefix) "([^"]*)" \{\n {2}policy = "write"/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    expect(writes.sort()).toEqual(
      [
        "service extra",
        "service shop",
        "service web",
        "service_prefix extra-",
        "service_prefix houston-",
        "service_prefix shop-",
        "service_prefix web-",
      ].sort(),
    );
    expect(hcl).not.toMatch(/service_prefix "" \{\n {2}policy = "write"/);
  });
});
