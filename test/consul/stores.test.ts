/**
 * The KV stores (shared/stores/*) against a real Consul: what each writes reads back as typed
 * documents, CAS writes lose to a concurrent writer without writing, and the scheduler's writes
 * (placements, fleet/owned) happen only while its session holds scheduler/leader.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { intakeSpecs } from "../../agent/accept.js";
import { AgentState } from "../../agent/state.js";
import type { Consul } from "../../shared/consul.js";
import { ConcurrentChangeError, InvalidKvDataError } from "../../shared/errors.js";
import { KvLayout } from "../../shared/kv-layout.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { SpecSigner, generateSigningKeys } from "../../shared/signing.js";
import { AGENT_SERVICE, type HistoryRecord, type StackSpec } from "../../shared/spec.js";
import { listAgents, listHosts, putAgent } from "../../shared/stores/agents.js";
import { NOTHING_OWNED, adoptUnits, readOwned, updateOwned, writeOwned } from "../../shared/stores/fleet-owned.js";
import { listHistory, putHistory } from "../../shared/stores/history.js";
import { acquireLeader, readLeader } from "../../shared/stores/leader.js";
import { deletePlacement, listPlacements, writePlacement } from "../../shared/stores/placements.js";
import { deleteReport, listReports, putReport } from "../../shared/stores/reports.js";
import { deleteSpec, listSpecs, readSpec, specEntries, verifySpec, writeSpec } from "../../shared/stores/specs.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

let consul: TestConsul;
let c: Consul;
beforeAll(async () => {
  consul = await startConsul();
  c = consul.client;
});
afterAll(async () => consul?.stop());

const spec = (stack: string, generation: number): StackSpec => ({
  schema: 1,
  stack,
  generation,
  environment: "test",
  createdAt: "",
  deployment: { type: "standalone", name: stack, version: null, group: null },
  units: [],
});
const placement = (stack: string, scheduler: string): PlacementDoc => ({
  schema: 1,
  stack,
  generation: 1,
  units: {},
  unplaced: {},
  moves: [],
  scheduler,
  updatedAt: "",
});

describe("specs", () => {
  const kv = new KvLayout("specs/");
  it("writes with CAS, reads back, refuses a stale index and deletes spec and signature together", async () => {
    expect(await readSpec(c, kv, "web")).toEqual({ spec: null, modifyIndex: 0 });
    const index = await writeSpec(c, kv, spec("web", 1), { modifyIndex: 0, signer: null });
    const read = await readSpec(c, kv, "web");
    expect(read).toEqual({ spec: spec("web", 1), modifyIndex: index });
    await expect(writeSpec(c, kv, spec("web", 2), { modifyIndex: 0, signer: null })).rejects.toBeInstanceOf(
      ConcurrentChangeError,
    );
    await writeSpec(c, kv, spec("web", 2), { modifyIndex: index, signer: null });
    await expect(deleteSpec(c, kv, "web", index)).rejects.toBeInstanceOf(ConcurrentChangeError);
    expect((await readSpec(c, kv, "web")).spec?.generation).toBe(2);
    await deleteSpec(c, kv, "web", (await readSpec(c, kv, "web")).modifyIndex);
    expect(await c.kvList(kv.stacks)).toEqual([]);
  });

  it("a signer's signature is written with the spec; an unsigned write removes a stale one", async () => {
    const keys = generateSigningKeys();
    const signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
    const index = await writeSpec(c, kv, spec("signed", 1), { modifyIndex: 0, signer });
    const [e] = specEntries(await c.kvList(kv.stacks), kv).filter((x) => x.stack === "signed");
    const trusted = new Map([[keys.keyId, createPublicKey(keys.publicPem)]]);
    expect(
      verifySpec(e!, spec("signed", 1), trusted, { prefix: kv.prefix, cluster: "", environment: null }),
    ).toBeNull();
    expect(JSON.parse(String((await c.kvGet(kv.latest("signed")))?.value))).toMatchObject({
      state: "live",
      generation: 1,
      signature: { kind: "latest", keyId: keys.keyId },
    });
    await writeSpec(c, kv, spec("signed", 2), { modifyIndex: index, signer: null });
    expect(await c.kvGet(kv.signature("signed"))).toBeNull();
    expect(await c.kvGet(kv.latest("signed"))).toBeNull();
    await deleteSpec(c, kv, "signed", (await readSpec(c, kv, "signed")).modifyIndex);
  });

  it("a removal with a signer leaves a signed tombstone above the live generation; without one, nothing", async () => {
    const keys = generateSigningKeys();
    const signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
    const index = await writeSpec(c, kv, spec("tomb", 2), { modifyIndex: 0, signer });
    await deleteSpec(c, kv, "tomb", index, { generation: 3, environment: "test", signer });
    expect(await c.kvGet(kv.spec("tomb"))).toBeNull();
    expect(await c.kvGet(kv.signature("tomb"))).toBeNull();
    expect(JSON.parse(String((await c.kvGet(kv.latest("tomb")))?.value))).toMatchObject({
      stack: "tomb",
      generation: 3,
      state: "removed",
      signature: { kind: "latest", generation: 3 },
    });
    // a deploy after the removal replaces the tombstone with the live record
    const again = await writeSpec(c, kv, spec("tomb", 4), { modifyIndex: 0, signer });
    expect(JSON.parse(String((await c.kvGet(kv.latest("tomb")))?.value))).toMatchObject({
      state: "live",
      generation: 4,
    });
    await deleteSpec(c, kv, "tomb", again, { generation: 5, environment: "test", signer: null });
    expect(await c.kvList(`${kv.stacks}tomb/`)).toEqual([]);
  });

  it("a fresh host refuses an older signed spec written back over a newer one: the signed latest record is in KV", async () => {
    const keys = generateSigningKeys();
    const signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
    const trusted = new Map([[keys.keyId, createPublicKey(keys.publicPem)]]);
    const scope = { prefix: kv.prefix, cluster: "", environment: null };
    let index = await writeSpec(c, kv, spec("fresh", 3), { modifyIndex: 0, signer });
    const [oldSpec, oldSig] = await Promise.all([c.kvGet(kv.spec("fresh")), c.kvGet(kv.signature("fresh"))]);
    index = await writeSpec(c, kv, spec("fresh", 5), { modifyIndex: index, signer });
    // a KV writer without the key puts generation 3 (spec and signature) back
    await c.txn([
      { verb: "set", key: kv.spec("fresh"), value: oldSpec!.value },
      { verb: "set", key: kv.signature("fresh"), value: oldSig!.value },
    ]);
    const state = new AgentState(join(mkdtempSync(join(tmpdir(), "houston-fresh-")), "agent.sqlite"));
    const refusals = intakeSpecs(await c.kvList(`${kv.stacks}fresh/`), kv, state, trusted, scope);
    expect(refusals.map((r) => r.reason)).toEqual([
      expect.stringMatching(/generation 3 is older than generation 5, the stack's latest signed generation/),
    ]);
    expect(state.specs()).toEqual([]);
    await c.kvDeletePrefix(`${kv.stacks}fresh/`);
  });

  it("lists every spec; an unreadable one is named, not thrown, except where one stack is read", async () => {
    await writeSpec(c, kv, spec("a", 1), { modifyIndex: 0, signer: null });
    await c.kvPut(kv.spec("b"), "{");
    const listed = await listSpecs(c, kv);
    expect(listed.specs.map((s) => s.stack)).toEqual(["a"]);
    expect(listed.unreadable.map((u) => u.key)).toEqual([kv.spec("b")]);
    await expect(readSpec(c, kv, "b")).rejects.toBeInstanceOf(InvalidKvDataError);
  });
});

describe("the scheduler's documents", () => {
  const kv = new KvLayout("sched/");
  it("placements are written and deleted only while the session holds the role", async () => {
    const holder = await c.sessionCreate({ name: "holder", ttlSeconds: 30 });
    const other = await c.sessionCreate({ name: "other", ttlSeconds: 30 });
    expect(await writePlacement(c, kv, placement("a", "n1"), 0, holder)).toBe(false); // nobody holds it yet
    expect(await acquireLeader(c, kv, holder, { node: "n1", since: "t" })).toBe(true);
    expect(await acquireLeader(c, kv, other, { node: "n2", since: "t" })).toBe(false);
    expect(await readLeader(c, kv)).toEqual({ session: holder, record: { node: "n1", since: "t" } });
    expect(await writePlacement(c, kv, placement("a", "n2"), 0, other)).toBe(false);
    expect(await writePlacement(c, kv, placement("a", "n1"), 0, holder)).toBe(true);
    const [a] = [...(await listPlacements(c, kv)).values()];
    expect(a).toMatchObject({ ok: true, stack: "a", value: placement("a", "n1") });
    expect(await writePlacement(c, kv, placement("a", "n1"), 0, holder)).toBe(false); // stale CAS
    expect(await deletePlacement(c, kv, "a", a!.index, other)).toBe(false);
    expect(await deletePlacement(c, kv, "a", a!.index, holder)).toBe(true);
    expect((await listPlacements(c, kv)).size).toBe(0);
  });

  it("fleet/owned: one CAS protocol; a concurrent writer makes update read again, not overwrite", async () => {
    expect(await readOwned(c, kv)).toEqual({ owned: NOTHING_OWNED, index: 0 });
    const first = await writeOwned(c, kv, adoptUnits(NOTHING_OWNED, [{ name: "x@1.service", stack: "x" }]), 0);
    expect(first).toBe((await readOwned(c, kv)).index); // the new ModifyIndex, for the next CAS
    expect(await writeOwned(c, kv, NOTHING_OWNED, 0)).toBeNull();
    // another writer gets in between update's read and its CAS (once): update reads again, keeps both
    let raced = false;
    const racing: Consul = Object.assign(Object.create(c) as Consul, {
      kvGet: async (key: string) => {
        const e = await c.kvGet(key);
        if (!raced && e) {
          raced = true;
          const { owned, index } = await readOwned(c, kv);
          await writeOwned(c, kv, adoptUnits(owned, [{ name: "z@1.service", stack: "z" }]), index);
        }
        return e;
      },
    });
    let attempts = 0;
    const seen = await updateOwned(
      racing,
      kv,
      (owned) => {
        attempts++;
        return adoptUnits(owned, [{ name: "w@1.service", stack: "w" }]);
      },
      3,
    );
    expect(attempts).toBe(2);
    expect(Object.keys(seen?.adopted ?? {}).sort()).toEqual(["x@1.service", "z@1.service"]);
    const { owned } = await readOwned(c, kv);
    expect(Object.keys(owned.adopted ?? {}).sort()).toEqual(["w@1.service", "x@1.service", "z@1.service"]);
    // it gives up (null, nothing written) when it loses every attempt
    let writes = 0;
    const always: Consul = Object.assign(Object.create(c) as Consul, {
      kvGet: async (key: string) => {
        const e = await c.kvGet(key);
        if (e) await c.kvPut(key, `${e.value.toString()}${" ".repeat(++writes)}`); // a change Consul records
        return e;
      },
    });
    expect(await updateOwned(always, kv, (o) => adoptUnits(o, [{ name: "v@1.service", stack: "v" }]), 2)).toBeNull();
    expect((await readOwned(c, kv)).owned.adopted?.["v@1.service"]).toBeUndefined();
    // writes with a session check fail when the session does not hold the role
    const stranger = await c.sessionCreate({ name: "stranger", ttlSeconds: 30 });
    const { index } = await readOwned(c, kv);
    expect(await writeOwned(c, kv, NOTHING_OWNED, index, stranger)).toBeNull();
  });
});

describe("reports, agents, history", () => {
  const kv = new KvLayout("docs/");
  it("reports are put and deleted per node and stack, and listed stack → node", async () => {
    const r = {
      schema: 1 as const,
      node: "n1",
      stack: "web",
      generation: 1,
      desiredGeneration: 1,
      converging: false,
      units: [],
      archives: [],
      errors: [],
    };
    await putReport(c, kv, "n1", r);
    await putReport(c, kv, "n2", { ...r, node: "n2" });
    await c.kvPut(kv.stackStatus("n3", "web"), "{");
    const { reports, ignored } = await listReports(c, kv);
    expect([...(reports.get("web")?.keys() ?? [])]).toEqual(["n1", "n2"]);
    expect(reports.get("web")?.get("n1")).toMatchObject(r);
    expect(ignored.map((u) => u.key)).toEqual([kv.stackStatus("n3", "web")]);
    await deleteReport(c, kv, "n1", "web");
    expect([...((await listReports(c, kv)).reports.get("web")?.keys() ?? [])]).toEqual(["n2"]);
  });

  it("agent records join the houston-agent service's health: hosts are the records Consul has an agent for", async () => {
    const { nodeName } = await c.agentSelf();
    const record = { schema: 1 as const, node: nodeName, meta: { role: "web" }, version: "1", startedAt: "t" };
    await putAgent(c, kv, record);
    await putAgent(c, kv, { ...record, node: "elsewhere" });
    await c.agentServiceRegister({
      ID: AGENT_SERVICE,
      Name: AGENT_SERVICE,
      Checks: [{ CheckID: "agent-ttl", Name: "agent", TTL: "1h", Status: "passing" }],
    });
    expect([...(await listAgents(c, kv)).records.keys()].sort()).toEqual(["elsewhere", nodeName].sort());
    expect(await listHosts(c, kv)).toEqual([{ node: nodeName, meta: { role: "web" }, agent: "passing" }]);
    await c.agentServiceDeregister(AGENT_SERVICE);
  });

  it("history is listed oldest generation first; an unreadable record is an error naming its key", async () => {
    const rec = (generation: number): HistoryRecord => ({
      schema: 1,
      stack: "web",
      generation,
      environment: "test",
      deployment: { type: "standalone", name: "web", version: null, group: null },
      user: "u",
      startedAt: "",
      finishedAt: "",
      durationMs: 1,
      result: "success",
      message: "",
      units: [],
      finalGeneration: generation,
    });
    await putHistory(c, kv, rec(10));
    await putHistory(c, kv, rec(9));
    expect((await listHistory(c, kv, "web")).map((h) => h.generation)).toEqual([9, 10]);
    await c.kvPut(kv.historyEntry("web", 11), "{");
    await expect(listHistory(c, kv, "web")).rejects.toThrow(kv.historyEntry("web", 11));
  });
});
