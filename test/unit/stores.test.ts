/**
 * The KV stores' pure halves (shared/stores/*): what each makes of a listing of its prefix — the
 * documents it decodes, keyed by their key, and the ones it leaves out naming the key — and
 * spec signatures checked against trusted keys.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { KvEntry } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import type { PlacementDoc } from "../../shared/schedule.js";
import { SpecSigner, generateSigningKeys } from "../../shared/signing.js";
import type { AgentRecord, StackSpec, StatusReport } from "../../shared/spec.js";
import { statusReport } from "../helpers/specs.js";
import { agentViews, decodeAgents, healthByNode } from "../../shared/stores/agents.js";
import { leaderOf } from "../../shared/stores/leader.js";
import { decodePlacements, readablePlacements } from "../../shared/stores/placements.js";
import { decodeReports } from "../../shared/stores/reports.js";
import { decodeSpecs, specEntries, verifySpec } from "../../shared/stores/specs.js";

const kv = new KvLayout("houston/");
let index = 10;
const entry = (key: string, value: unknown, session?: string): KvEntry => ({
  key,
  value: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)),
  modifyIndex: index++,
  createIndex: 1,
  flags: 0,
  session,
});

const spec = (stack: string, generation = 1): StackSpec => ({
  schema: 1,
  stack,
  generation,
  environment: "test",
  createdAt: "",
  deployment: { type: "standalone", name: stack, version: null, group: null },
  units: [],
});
const report = (node: string, stack: string): StatusReport => statusReport(node, stack);
const record = (node: string, meta: Record<string, string> = {}): AgentRecord => ({
  schema: 1,
  node,
  meta,
  version: "1",
  startedAt: "",
});
const placement = (stack: string): PlacementDoc => ({
  schema: 1,
  stack,
  generation: 1,
  units: { "a@1.service": ["n1"] },
  unplaced: {},
  moves: [],
  scheduler: "n1",
  updatedAt: "",
});

describe("specs store", () => {
  it("decodes each stack's spec; signatures and other keys are not specs", () => {
    const { specs, unreadable } = decodeSpecs(
      [
        entry("houston/stacks/a/spec", spec("a")),
        entry("houston/stacks/a/signature", { not: "a spec" }),
        entry("houston/stacks/b/spec", spec("b", 3)),
        entry("houston/stacks/b/other", "x"),
      ],
      kv,
    );
    expect(specs.map((s) => `${s.stack}@${s.generation}`)).toEqual(["a@1", "b@3"]);
    expect(unreadable).toEqual([]);
  });

  it("returns an unreadable spec with its key and the problem (bad JSON, schema, another stack's)", () => {
    const { specs, unreadable } = decodeSpecs(
      [
        entry("houston/stacks/a/spec", "{not json"),
        entry("houston/stacks/b/spec", { ...spec("b"), generation: "two" }),
        entry("houston/stacks/c/spec", spec("d")),
        entry("houston/stacks/e/spec", spec("e")),
      ],
      kv,
    );
    expect(specs.map((s) => s.stack)).toEqual(["e"]);
    expect(unreadable.map((u) => u.key)).toEqual([
      "houston/stacks/a/spec",
      "houston/stacks/b/spec",
      "houston/stacks/c/spec",
    ]);
    expect(unreadable[0]?.error).toMatch(/houston\/stacks\/a\/spec: not valid JSON/);
    expect(unreadable[1]?.error).toMatch(/generation/);
    expect(unreadable[2]?.error).toBe("invalid data at KV key houston/stacks/c/spec: names stack d");
  });

  it("keeps only the stack asked for", () => {
    const entries = [entry("houston/stacks/a/spec", spec("a")), entry("houston/stacks/b/spec", "{")];
    expect(decodeSpecs(entries, kv, "a")).toEqual({ specs: [spec("a")], unreadable: [] });
  });

  it("pairs each spec with its signature and verifies it against trusted keys", () => {
    const keys = generateSigningKeys();
    const other = generateSigningKeys();
    const signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
    const bytes = Buffer.from(JSON.stringify(spec("a", 2)));
    const sig = signer.sign({ kind: "spec", stack: "a", generation: 2, environment: "test" }, bytes);
    const scope = { prefix: kv.prefix, cluster: "", environment: "test" };
    const [e] = specEntries(
      [entry("houston/stacks/a/signature", sig), { ...entry("houston/stacks/a/spec", ""), value: bytes }],
      kv,
    );
    expect(e?.signature?.key).toBe("houston/stacks/a/signature");
    const trusted = new Map([[keys.keyId, createPublicKey(keys.publicPem)]]);
    expect(verifySpec(e!, spec("a", 2), trusted, scope)).toBeNull();
    expect(verifySpec(e!, spec("a", 2), new Map([[other.keyId, createPublicKey(other.publicPem)]]), scope)).toMatch(
      /does not trust/,
    );
    expect(verifySpec({ ...e!, signature: null }, spec("a", 2), trusted, scope)).toMatch(/not signed/);
    const garbled = { ...e!, signature: { key: "houston/stacks/a/signature", value: Buffer.from("{") } };
    expect(verifySpec(garbled, spec("a", 2), trusted, scope)).toMatch(/houston\/stacks\/a\/signature: not valid JSON/);
  });
});

describe("placements store", () => {
  it("decodes by stack, with the index to CAS on; an unreadable or foreign document keeps its index", () => {
    const good = entry("houston/placements/a", placement("a"));
    const bad = entry("houston/placements/b", "{");
    const foreign = entry("houston/placements/c", placement("x"));
    const all = decodePlacements([good, bad, foreign, entry("houston/placements/a/b", "{")], kv);
    expect([...all.keys()]).toEqual(["a", "b", "c"]);
    expect(all.get("a")).toMatchObject({ ok: true, stack: "a", index: good.modifyIndex });
    expect(all.get("b")).toMatchObject({ ok: false, stack: "b", index: bad.modifyIndex, key: bad.key });
    expect(all.get("c")).toMatchObject({ ok: false, detail: "is about stack x" });
    expect([...readablePlacements(all).keys()]).toEqual(["a"]);
  });
});

describe("reports store", () => {
  it("maps stack → node → report; an unreadable report is left out, naming its key", () => {
    const { reports, ignored } = decodeReports(
      [
        entry("houston/status/n1/a", report("n1", "a")),
        entry("houston/status/n2/a", report("n2", "a")),
        entry("houston/status/n1/b", report("n1", "b")),
        entry("houston/status/n3/a", "{"),
        entry("houston/agents/n1", record("n1")),
      ],
      kv,
    );
    expect([...reports.keys()]).toEqual(["a", "b"]);
    expect([...(reports.get("a")?.keys() ?? [])]).toEqual(["n1", "n2"]);
    expect(ignored.map((u) => u.key)).toEqual(["houston/status/n3/a"]);
  });
});

describe("reports and records are keyed by their KV key, never by their body", () => {
  it("a report whose body names another node or stack is ignored, and the warning names its key", () => {
    const { reports, ignored } = decodeReports(
      [
        entry("houston/status/n1/a", report("n1", "a")),
        entry("houston/status/n2/a", report("n1", "a")),
        entry("houston/status/n2/b", report("n2", "a")),
        entry("houston/status/n2/a/extra", report("n2", "a")),
      ],
      kv,
    );
    expect([...reports.keys()]).toEqual(["a"]);
    expect([...(reports.get("a")?.keys() ?? [])]).toEqual(["n1"]);
    expect(ignored.map((u) => u.error)).toEqual([
      "invalid data at KV key houston/status/n2/a: the report names node n1 and stack a, but its key is n2's report of a; ignored",
      "invalid data at KV key houston/status/n2/b: the report names node n2 and stack a, but its key is n2's report of b; ignored",
      "invalid data at KV key houston/status/n2/a/extra: not a status/<node>/<stack> key; ignored",
    ]);
  });

  it("a record whose body names another node is ignored", () => {
    const { records, ignored } = decodeAgents(
      [entry("houston/agents/n1", record("n1")), entry("houston/agents/n2", record("n1", { role: "db" }))],
      kv,
    );
    expect([...records]).toEqual([["n1", record("n1")]]);
    expect(ignored).toEqual([
      {
        key: "houston/agents/n2",
        error: "invalid data at KV key houston/agents/n2: the record names node n1, but its key is n2's; ignored",
      },
    ]);
  });
});

describe("agents store", () => {
  it("decodes records by node and joins them with the agents' health once", () => {
    const { records, ignored } = decodeAgents(
      [
        entry("houston/agents/n1", { ...record("n1", { role: "web" }), machineId: "m1" }),
        entry("houston/agents/n2", record("n2")),
        entry("houston/agents/n3", { schema: 1 }),
      ],
      kv,
    );
    expect([...records.keys()]).toEqual(["n1", "n2"]);
    expect(ignored.map((u) => u.key)).toEqual(["houston/agents/n3"]);
    const health = healthByNode([
      {
        Node: { Node: "n1", Address: "10.0.0.1", Meta: {} },
        Service: { ID: "houston-agent", Service: "houston-agent", Tags: null, Port: 1 },
        Checks: [
          { CheckID: "serfHealth", Status: "passing", Output: "" },
          { CheckID: "service:houston-agent", Status: "critical", Output: "" },
        ],
      },
    ]);
    expect(agentViews(records, health)).toEqual([
      { node: "n1", meta: { role: "web" }, machineId: "m1", agent: "critical" },
      { node: "n2", meta: {}, agent: "missing" },
    ]);
  });
});

describe("leader store", () => {
  it("the role is held only while a session holds the key; an unreadable record still means held", () => {
    const rec = { node: "n1", since: "t" };
    expect(leaderOf([entry("houston/scheduler/leader", rec)], kv)).toEqual({ session: undefined, record: null });
    expect(leaderOf([entry("houston/scheduler/leader", rec, "s1")], kv)).toEqual({ session: "s1", record: rec });
    expect(leaderOf([entry("houston/scheduler/leader", "{", "s1")], kv)).toEqual({ session: "s1", record: null });
    expect(leaderOf([], kv)).toEqual({ session: undefined, record: null });
  });
});
