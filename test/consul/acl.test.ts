/**
 * Least-privilege ACLs on a real Consul with `default_policy = "deny"`: Houston's policies as
 * `houston acl bootstrap-tokens` creates them. An agent's token cannot write another node's
 * status, any spec, tombstone or archive; a read-only token reads but cannot deploy; every refusal
 * names the permission that is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Consul } from "../../shared/consul.js";
import { listTokens } from "../../shared/consul-acl.js";
import { ConsulPermissionError } from "../../shared/errors.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { removalOf } from "../../agent/accept.js";
import { SpecSigner, TrustStore, generateSigningKeys } from "../../shared/signing.js";
import { originalFiles } from "../../agent/apply.js";
import { FleetMirror } from "../../agent/fleet-mirror.js";
import { Fleet } from "../../shared/fleet.js";
import { deleteAdoptedFiles, putAdoptedFiles } from "../../shared/stores/adopted.js";
import { deleteSpec, readSpec, writeSpec } from "../../shared/stores/specs.js";
import { bootstrapTokens, configDir, houston } from "../helpers/cli.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

const MASTER = "b1gs3cret-master-token";
let consul: TestConsul;
let tokens: Record<string, string> = {};
const kv = new KvLayout("houston/");
const dir = () =>
  configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web: [app:1]\n",
    "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
  });

beforeAll(async () => {
  consul = await startConsul(
    ["-hcl", `acl { enabled = true default_policy = "deny" tokens { master = "${MASTER}" agent = "${MASTER}" } }`],
    MASTER,
  );
  tokens = await bootstrapTokens(consul.addr, dir(), MASTER, ["n1", "n2"]);
});
afterAll(async () => consul?.stop());

const tokenCount = async () => (await listTokens(consul.client)).length;
const as = (role: string) => new Consul({ addr: consul.addr, token: tokens[role] });

describe("ACL policies (default deny)", () => {
  it("bootstrap-tokens made one token per role", () => {
    expect(Object.keys(tokens).sort()).toEqual([
      "agent-n1",
      "agent-n2",
      "consul-agent-n1",
      "consul-agent-n2",
      "controller",
      "operator",
    ]);
  });

  it("bootstrap-tokens again for a node that has tokens says so and creates nothing", async () => {
    const before = await tokenCount();
    const r = await houston(consul.addr, dir(), "--token", MASTER, "--json", "acl", "bootstrap-tokens", "--node", "n1");
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: unknown[]; existing: { role: string }[] };
    expect(out.tokens).toEqual([]);
    expect(out.existing.map((e) => e.role).sort()).toEqual(["agent-n1", "consul-agent-n1", "controller", "operator"]);
    expect(r.stderr).toMatch(/agent-n1: a token exists already \(accessor [0-9a-f-]{36}\); nothing created/);
    expect(await tokenCount()).toBe(before);
  });

  it("bootstrap-tokens for a new node creates that node's two tokens only", async () => {
    const before = await tokenCount();
    const r = await houston(consul.addr, dir(), "--token", MASTER, "acl", "bootstrap-tokens", "--node", "n3");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.map((l) => l.split(/\s+/)[0]).sort()).toEqual(["agent-n3", "consul-agent-n3"]);
    expect(await tokenCount()).toBe(before + 2);
    const secret = (role: string) => lines.find((l) => l.startsWith(`${role} `))!.split(/\s+/)[1]!;
    // the Houston agent's token reports for n3 only
    const agent = new Consul({ addr: consul.addr, token: secret("agent-n3") });
    await agent.kvPut(kv.stackStatus("n3", "web"), "{}");
    await expect(agent.kvPut(kv.stackStatus("n1", "web"), "{}")).rejects.toThrow(ConsulPermissionError);
    // the Consul client agent's token is n3's node identity: it registers node n3, not n1
    const client = new Consul({ addr: consul.addr, token: secret("consul-agent-n3") });
    const reg = (node: string) =>
      client.request("PUT", "/v1/catalog/register", { body: JSON.stringify({ Node: node, Address: "127.0.0.9" }) });
    expect((await reg("n3")).status).toBe(200);
    expect((await reg("n1")).status).toBe(403);
  });

  it("an agent writes only its own status and record, and reads specs and archives", async () => {
    const agent = as("agent-n1");
    await agent.kvPut(kv.stackStatus("n1", "web"), "{}");
    await agent.kvPut(kv.agent("n1"), "{}");
    await consul.client.kvPut(kv.spec("web"), "{}");
    expect(await agent.kvGet(kv.spec("web"))).not.toBeNull();
    const refusals: [string, RegExp][] = [
      [kv.stackStatus("n2", "web"), /key:write on houston\/status\/n2\/web/],
      [kv.agent("n2"), /key:write on houston\/agents\/n2/],
      [kv.spec("web"), /key:write on houston\/stacks\/web\/spec/],
      [kv.archiveMeta("a".repeat(64)), /key:write on houston\/archives\//],
      [kv.historyEntry("web", 1), /key:write on houston\/history\/web/],
    ];
    for (const [key, re] of refusals) {
      const err = await agent.kvPut(key, "x").catch((e: unknown) => e);
      expect(err, key).toBeInstanceOf(ConsulPermissionError);
      expect(String(err)).toMatch(re);
    }
  });

  it("a read-only token runs status, history and plan, but cannot deploy; the refusal names the permission", async () => {
    const d = dir();
    const op = tokens.operator!;
    for (const args of [["status"], ["history", "web"], ["plan", "standalone", "web"], ["nodes"]]) {
      const r = await houston(consul.addr, d, "--token", op, ...args);
      expect([0, 1], `${args.join(" ")}: ${r.stderr}`).toContain(r.code);
      expect(r.stderr).not.toMatch(/permission|unreachable|\n\s+at /i);
    }
    const deploy = await houston(consul.addr, d, "--token", op, "standalone", "web");
    expect(deploy.code).toBe(5);
    expect(deploy.stderr).toMatch(/Consul's ACLs refused the token .*it needs (session:write|key:write on houston\/)/);
    expect(deploy.stderr).not.toMatch(/unreachable|\n\s+at /);
  });

  it("a token Consul does not know is refused as such, not as unreachable", async () => {
    const r = await houston(consul.addr, dir(), "--token", "00000000-0000-0000-0000-000000000000", "status");
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/ACL not found/);
  });

  it("the controller's token can write specs, archives, locks and history but not another node's status", async () => {
    const c = as("controller");
    await c.kvPut(kv.spec("web"), "{}");
    await c.kvPut(kv.archiveMeta("b".repeat(64)), "{}");
    await c.kvPut(kv.historyEntry("web", 1), "{}");
    const session = await c.sessionCreate({ name: "t", ttlSeconds: 15 });
    expect(await c.kvPut(kv.lock("web"), "me", { acquire: session })).toBe(true);
    await expect(c.kvPut(kv.stackStatus("n1", "web"), "{}")).rejects.toThrow(ConsulPermissionError);
  });

  it("a signed removal: the controller's token writes the tombstone, an agent's token reads it and cannot forge one", async () => {
    const keys = generateSigningKeys();
    const signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
    const trusted = new Map([[keys.keyId, createPublicKey(keys.publicPem)]]);
    const scope = { prefix: kv.prefix, cluster: "", environment: "test" };
    const ctl = as("controller");
    const spec = {
      schema: 1 as const,
      stack: "gone",
      generation: 3,
      environment: "test",
      createdAt: "",
      deployment: { type: "standalone" as const, name: "gone", version: null, group: null },
      units: [],
    };
    const index = await writeSpec(ctl, kv, spec, { modifyIndex: 0, signer });
    expect(JSON.parse(String((await ctl.kvGet(kv.latest("gone")))?.value))).toMatchObject({
      state: "live",
      generation: 3,
    });
    const agent = as("agent-n1");
    const err = await agent.kvPut(kv.latest("gone"), "{}").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsulPermissionError);
    expect(String(err)).toMatch(/key:write on houston\/stacks\/gone\/latest/);
    await deleteSpec(ctl, kv, "gone", index, { generation: 4, environment: "test", signer });
    expect((await readSpec(agent, kv, "gone")).spec).toBeNull();
    const tombstone = (await agent.kvGet(kv.latest("gone")))!;
    expect(removalOf("gone", 3, tombstone, trusted, scope)).toEqual({ remove: true, generation: 4 });
  });

  it("an agent's token cannot make other hosts overwrite files Houston did not create (adopted files)", async () => {
    const keys = generateSigningKeys();
    const dir = mkdtempSync(join(tmpdir(), "houston-trust-"));
    writeFileSync(join(dir, "ci.pub"), keys.publicPem);
    const signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
    const logs: string[] = [];
    const agentOf = (token: Consul, trust: TrustStore, cluster = "") => ({
      consul: token,
      kv,
      trust,
      cluster,
      log: (m: string) => logs.push(m),
    });
    const n2 = (trust: TrustStore, cluster = "") => agentOf(as("agent-n2"), trust, cluster);
    const signed = new TrustStore([dir]);
    const unsigned = new TrustStore([]);
    // a compromised host n1 may write fleet/ (the scheduler role): it names a file of n2's for stack web
    const evil = as("agent-n1");
    await evil.kvPut(kv.fleetOwned, JSON.stringify({ schema: 1, units: {}, adoptedFiles: { web: ["/etc/passwd"] } }));
    expect([...(await originalFiles(n2(signed), "web"))]).toEqual([]);
    expect([...(await originalFiles(n2(unsigned), "web"))]).toEqual([]);
    // where the adopted files are recorded now, only the controller's token writes
    await expect(evil.kvPut(kv.adopted("web"), "{}")).rejects.toThrow(ConsulPermissionError);
    // what `houston adopt` records (signed) is taken over, by agents that trust the key and those that trust none
    const ctl = as("controller");
    await putAdoptedFiles(ctl, kv, "web", ["/etc/web.env"], signer);
    expect([...(await originalFiles(n2(signed), "web"))]).toEqual(["/etc/web.env"]);
    expect([...(await originalFiles(n2(unsigned), "web"))]).toEqual(["/etc/web.env"]);
    // signed for another cluster: not taken over
    expect([...(await originalFiles(n2(signed, "prod"), "web"))]).toEqual([]);
    // a KV writer who adds a path, or writes the record unsigned: not taken over where signing is on
    const doc = JSON.parse(String((await ctl.kvGet(kv.adopted("web")))?.value)) as { paths: string[] };
    await ctl.kvPut(kv.adopted("web"), JSON.stringify({ ...doc, paths: ["/etc/passwd", "/etc/web.env"] }));
    expect([...(await originalFiles(n2(signed), "web"))]).toEqual([]);
    await putAdoptedFiles(ctl, kv, "web", ["/etc/passwd"], null);
    expect([...(await originalFiles(n2(signed), "web"))]).toEqual([]);
    expect(logs.join("\n")).toMatch(/houston\/stacks\/web\/adopted: it is not signed/);
    // another stack's record is not this stack's
    await putAdoptedFiles(ctl, kv, "web", ["/etc/web.env"], signer);
    expect([...(await originalFiles(n2(signed), "api"))]).toEqual([]);
    await deleteAdoptedFiles(ctl, kv, "web");
    await ctl.kvDelete(kv.fleetOwned);
  });

  it("an unreadable fleet/owned (any agent token may write it) does not stop the scheduler placing other stacks", async () => {
    // a compromised host n1 writes garbage where the fleet side of the scheduler role reads
    await as("agent-n1").kvPut(kv.fleetOwned, "not json");
    const logs: string[] = [];
    const mirror = new FleetMirror({
      consul: as("agent-n2"),
      kv,
      fleet: new Fleet("http://127.0.0.1:9"),
      log: (m) => logs.push(m),
    });
    // no fleet stack: nothing to do in fleet, the pass goes on (it threw before, and the role was given up)
    const r = await mirror.pass([], "no-session", new Map(), new Map(), "n2");
    expect(r).toMatchObject({ ok: true });
    expect([...r.docs.keys()]).toEqual([]);
    expect(mirror.lastError).toMatch(/houston\/fleet\/owned.*not valid JSON.*nothing done in fleet/);
    await as("controller").kvDelete(kv.fleetOwned);
  });

  it("acl policies prints HCL and JSON rules for each role", async () => {
    const r = await houston(consul.addr, dir(), "acl", "policies", "--node", "web-1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('key_prefix "houston/status/web-1/" {\n  policy = "write"\n}');
    expect(r.stdout).toContain("houston-controller");
    expect(r.stdout).toContain('"key_prefix": {');
    // one block per file, each after a "##### FILE" line: HCL and JSON never in one block
    const blocks = r.stdout.split(/^##### /m).slice(1);
    expect(blocks.map((b) => b.split(" ")[0])).toEqual([
      "houston-controller.hcl",
      "houston-controller.json",
      "houston-operator.hcl",
      "houston-operator.json",
      "houston-agent-web-1.hcl",
      "houston-agent-web-1.json",
    ]);
    for (const b of blocks.filter((x) => x.split(" ")[0]!.endsWith(".json")))
      expect(() => JSON.parse(b.slice(b.indexOf("\n")))).not.toThrow();
  });

  it("acl policies --out DIR writes one HCL and one JSON file per policy that Consul accepts", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "houston-acl-")), "policies");
    const r = await houston(consul.addr, dir(), "acl", "policies", "--node", "web-1", "--out", out);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual([
      "houston-agent-web-1.hcl",
      "houston-agent-web-1.json",
      "houston-controller.hcl",
      "houston-controller.json",
      "houston-operator.hcl",
      "houston-operator.json",
    ]);
    expect(readFileSync(join(out, "houston-controller.hcl"), "utf8")).toContain('key_prefix "houston/fleet/"');
    for (const f of readdirSync(out)) {
      const res = await consul.client.request("PUT", "/v1/acl/policy", {
        body: JSON.stringify({ Name: `t-${f.replace(".", "-")}`, Rules: readFileSync(join(out, f), "utf8") }),
      });
      expect(res.status, `${f}: ${res.body.toString()}`).toBe(200);
    }
    const again = await houston(consul.addr, dir(), "acl", "policies", "--node", "web-1", "--out", out);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--out.*already holds houston-controller\.hcl/);
  });
});
