/**
 * The controller signs only what it verified (issue 24 §1), through the built CLI on a real Consul
 * with ACLs on (default deny, the controller's token from `houston acl bootstrap-tokens`): with a
 * signing key, a live spec or a history record a KV writer changed is refused before anything is
 * written — a routine deploy does not keep (and sign) a unit someone added to the live spec,
 * rollback does not redeploy an edited record, remove does not act on an unverified spec — and
 * --trust-kv-as-is takes them as they are, naming each key in a WARNING.
 */
import { createPrivateKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { SpecSigner, generateSigningKeys } from "../../shared/signing.js";
import { AGENT_SERVICE, type HistoryRecord, type StackSpec, type UnitSpec } from "../../shared/spec.js";
import { putAgent } from "../../shared/stores/agents.js";
import { putHistory } from "../../shared/stores/history.js";
import { readSpec, writeSpec } from "../../shared/stores/specs.js";
import { bootstrapTokens, configDir, houston } from "../helpers/cli.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

const MASTER = "readback-master-token";
let consul: TestConsul;
let c: Consul; // the KV writer (management token)
let controllerToken = "";
let dir = "";
let keyFile = "";
let signer: SpecSigner;
let other: SpecSigner;
const kv = new KvLayout("houston/");

const unit = (name: string, version: string, group: string | null, exec = "/bin/sleep infinity"): UnitSpec => ({
  name,
  stack: "web",
  component: "app",
  group,
  version,
  role: "dependency",
  text: `[Service]\nExecStart=${exec}\n`,
  placements: [{ global: true, metadata: {} }],
});
const spec = (generation: number, units: UnitSpec[]): StackSpec => ({
  schema: 1,
  stack: "web",
  generation,
  environment: "test",
  createdAt: "",
  deployment: { type: "standalone", name: "web", version: null, group: null },
  units,
});
const record = (generation: number, units: UnitSpec[]): HistoryRecord => ({
  schema: 1,
  stack: "web",
  generation,
  environment: "test",
  deployment: { type: "standalone", name: "web", version: null, group: null },
  user: "ci",
  startedAt: "",
  finishedAt: "",
  durationMs: 1,
  result: "success",
  message: "ok",
  units,
  finalGeneration: generation,
});
const foreign = {
  ...unit("web-evil:blue@1.service", "1", "blue", "/bin/sh -c 'touch /pwned; sleep infinity'"),
  component: "evil",
};
const cli = (...args: string[]) => houston(consul.addr, dir, "--token", controllerToken, ...args);
const signed = (...args: string[]) => cli("--signing-key", keyFile, ...args);

beforeAll(async () => {
  consul = await startConsul(
    ["-hcl", `acl { enabled = true default_policy = "deny" tokens { master = "${MASTER}" agent = "${MASTER}" } }`],
    MASTER,
  );
  c = consul.client;
  dir = configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web: [app:2]\n",
    "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
  });
  const node = (await c.agentSelf()).nodeName;
  controllerToken = (await bootstrapTokens(consul.addr, dir, MASTER, [node])).controller ?? "";
  const keys = generateSigningKeys();
  keyFile = join(dir, "signing.key");
  writeFileSync(keyFile, keys.privatePem, { mode: 0o600 });
  signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
  other = new SpecSigner(createPrivateKey(generateSigningKeys().privatePem), { prefix: kv.prefix, cluster: "" });
  // one passing agent, so a deploy that did not refuse would go on and write
  await c.agentServiceRegister({ ID: AGENT_SERVICE, Name: AGENT_SERVICE, Check: { TTL: "1h", Status: "passing" } });
  await putAgent(c, kv, { schema: 1, node, meta: {}, version: "test", startedAt: "" });
});
afterAll(async () => consul?.stop());

/** What the controller wrote: generation 1 and 2 in history, generation 2 live (signed). */
beforeEach(async () => {
  await c.kvDeletePrefix(kv.prefix);
  const node = (await c.agentSelf()).nodeName;
  await putAgent(c, kv, { schema: 1, node, meta: {}, version: "test", startedAt: "" });
  await putHistory(c, kv, record(1, [unit("web-app@1.service", "1", null)]), signer);
  await putHistory(c, kv, record(2, [unit("web-app@2.service", "2", null)]), signer);
  await writeSpec(c, kv, spec(2, [unit("web-app@2.service", "2", null)]), { modifyIndex: 0, signer });
});

/** Adds the foreign unit to the live spec: unsigned, keeping the old signature, or signed by another key. */
async function tamper(how: "unsigned" | "stale signature" | "other key"): Promise<Buffer> {
  const { spec: live, modifyIndex } = await readSpec(c, kv, "web");
  const next = { ...live!, units: [...live!.units, foreign] };
  if (how === "stale signature") await c.kvPut(kv.spec("web"), JSON.stringify(next));
  else await writeSpec(c, kv, next, { modifyIndex, signer: how === "other key" ? other : null });
  return (await c.kvGet(kv.spec("web")))!.value;
}

async function historyKeys(): Promise<string[]> {
  return (await c.kvKeys(kv.history("web"))).filter((k) => !k.endsWith("/signature"));
}

describe("with a signing key the controller acts only on what it signed", () => {
  it.each([
    ["unsigned", /it is not signed|is not signed/],
    ["stale signature", /does not match the spec \(tampered\?\)/],
    ["other key", /signed by key [0-9a-f]{16}, which this controller does not trust/],
  ] as const)(
    "a unit added to the live spec (%s): the next deploy refuses, naming the key; nothing written",
    async (how, why) => {
      const tampered = await tamper(how);
      const r = await signed("standalone", "web", "-d", "1", "-m", "1", "--timeout", "30");
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        `houston/stacks/web/spec does not verify against this controller's signing key ${signer.keyId}`,
      );
      expect(r.stderr).toMatch(why);
      expect(r.stderr).toContain("--trust-kv-as-is");
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect((await c.kvGet(kv.spec("web")))!.value).toEqual(tampered);
      expect(await historyKeys()).toHaveLength(2);
    },
  );

  it("an edited history record: rollback to it refuses; nothing written", async () => {
    const key = kv.historyEntry("web", 1);
    const edited = record(1, [unit("web-app@1.service", "1", null), foreign]);
    await c.kvPut(key, JSON.stringify(edited));
    const liveBefore = (await c.kvGet(kv.spec("web")))!.value;
    const r = await signed("rollback", "web", "1", "-d", "1", "-m", "1", "--timeout", "30");
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`not rolling back to generation 1: invalid data at KV key ${key}:`);
    expect(r.stderr).toMatch(/does not match it \(tampered\?\)/);
    // the default target (the success before the last) is not the edited record either
    const d = await signed("rollback", "web", "-d", "1", "-m", "1", "--timeout", "30");
    expect(d.code, d.stderr).toBe(1);
    expect(d.stderr).toContain(`not counting invalid data at KV key ${key}`);
    expect(d.stderr).toContain("has no earlier successful deployment to roll back to");
    expect((await c.kvGet(kv.spec("web")))!.value).toEqual(liveBefore);
    expect(await historyKeys()).toHaveLength(2);
  });

  it("remove does not act on an unverified live spec; --trust-kv-as-is does, naming the key", async () => {
    const tampered = await tamper("unsigned");
    const r = await signed("remove", "web", "-g", "blue");
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("houston/stacks/web/spec does not verify against this controller's signing key");
    expect((await c.kvGet(kv.spec("web")))!.value).toEqual(tampered);
    const forced = await signed("remove", "web", "-g", "blue", "--trust-kv-as-is");
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/WARNING +--trust-kv-as-is: taking houston\/stacks\/web\/spec as it is although/);
    const { spec: after } = await readSpec(c, kv, "web");
    expect(after?.units.map((u) => u.name)).toEqual(["web-app@2.service"]);
  });

  it("history is signed when written: what the controller wrote verifies, and without a key nothing is checked", async () => {
    expect(await c.kvGet(kv.historySignature("web", 2))).not.toBeNull();
    await tamper("unsigned");
    // no signing key: KV is trusted as it is (the agents without --trust do the same)
    const r = await cli("remove", "web", "-g", "blue");
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("generations are safe integers and only go forward", () => {
  const absurd = kv.historyEntry("web", 99999999);
  const plant = () => c.kvPut(absurd, JSON.stringify({ ...record(2, []), generation: 1e300, finalGeneration: 1e300 }));

  it("with a signing key, a history record claiming generation 1e300 is not counted: the next generation follows the live one", async () => {
    await plant();
    const r = await signed("standalone", "web", "-d", "1", "-m", "1", "--timeout", "30");
    expect(r.stderr).toContain(`not counting invalid data at KV key ${absurd}`);
    const gens = (await historyKeys()).filter((k) => k !== absurd);
    expect(gens.at(-1)).toBe(kv.historyEntry("web", 3));
    const { spec: live } = await readSpec(c, kv, "web");
    expect(live!.generation).toBeLessThan(10);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("without a signing key it is an error naming the key, and nothing is written", async () => {
    await plant();
    const before = (await c.kvGet(kv.spec("web")))!.value;
    const r = await cli("standalone", "web", "-d", "1", "-m", "1", "--timeout", "30");
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`invalid data at KV key ${absurd}`);
    expect((await c.kvGet(kv.spec("web")))!.value).toEqual(before);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
