/**
 * One compromised host cannot speak for another (issue 24 §3): with ACLs on (default deny) and a
 * per-node agent token from `houston acl bootstrap-tokens`, a host may write only its own
 * status/<node>/ and agents/<node>; a body there naming another node is ignored by the stores
 * (shared/stores/reports.ts, agents.ts), which key everything by the KV key, and named in a warning.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import type { AgentRecord, StatusReport } from "../../shared/spec.js";
import { listAgents, putAgent } from "../../shared/stores/agents.js";
import { listReports, putReport } from "../../shared/stores/reports.js";
import { bootstrapTokens, configDir } from "../helpers/cli.js";
import { startConsul, type TestConsul } from "../helpers/consul.js";

const MASTER = "r3ports-master-token";
let consul: TestConsul;
let tokens: Record<string, string> = {};
const kv = new KvLayout("houston/");

beforeAll(async () => {
  consul = await startConsul(
    ["-hcl", `acl { enabled = true default_policy = "deny" tokens { master = "${MASTER}" agent = "${MASTER}" } }`],
    MASTER,
  );
  const dir = configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web: [app:1]\n",
    "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
  });
  tokens = await bootstrapTokens(consul.addr, dir, MASTER, ["honest", "rogue"]);
});
afterAll(async () => consul?.stop());

const as = (role: string) => new Consul({ addr: consul.addr, token: tokens[role] });
const report = (node: string, generation: number, activeState: string): Omit<StatusReport, "updatedAt"> => ({
  schema: 1,
  node,
  stack: "web",
  generation,
  desiredGeneration: generation,
  converging: false,
  units: [{ name: "web-app@2.service", activeState, subState: "-" }],
  archives: [],
  errors: [],
});

describe("reports and records are keyed by their KV key", () => {
  it("a host's report naming another node is ignored, the honest host's report stands", async () => {
    await putReport(as("agent-honest"), kv, "honest", report("honest", 2, "failed"));
    // the rogue host writes where its token lets it, claiming to be the honest host, all well
    await as("agent-rogue").kvPut(
      kv.stackStatus("rogue", "web"),
      JSON.stringify({ ...report("honest", 2, "active"), updatedAt: "t" }),
    );
    const { reports, ignored } = await listReports(as("controller"), kv);
    expect([...(reports.get("web")?.keys() ?? [])]).toEqual(["honest"]);
    expect(reports.get("web")?.get("honest")?.units[0]?.activeState).toBe("failed");
    expect(ignored).toHaveLength(1);
    expect(ignored[0]?.key).toBe(kv.stackStatus("rogue", "web"));
    expect(ignored[0]?.error).toMatch(/houston\/status\/rogue\/web: the report names node honest/);
  });

  it("an agent record naming another node is ignored", async () => {
    const record = (node: string, meta: Record<string, string>): AgentRecord => ({
      schema: 1,
      node,
      meta,
      version: "1",
      startedAt: "t",
    });
    await putAgent(as("agent-honest"), kv, record("honest", { role: "db" }));
    await as("agent-rogue").kvPut(kv.agent("rogue"), JSON.stringify(record("honest", { role: "web" })));
    const { records, ignored } = await listAgents(as("controller"), kv);
    expect([...records.keys()]).toEqual(["honest"]);
    expect(records.get("honest")?.meta).toEqual({ role: "db" });
    expect(ignored.map((u) => u.key)).toEqual([kv.agent("rogue")]);
  });
});
