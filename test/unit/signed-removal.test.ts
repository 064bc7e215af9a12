/**
 * Removal and freshness as an agent with --trust sees them: a stack whose spec vanished is removed
 * only on a signed tombstone (the stack's latest record, state removed) newer than what runs; a
 * fresh host (no memory of its own) refuses a replayed older spec on the word of the stack's signed
 * latest record. Pure decisions (removalOf, acceptSpec) as tables; intakeSpecs on a real SQLite state.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { acceptSpec, intakeSpecs, removalOf } from "../../agent/accept.js";
import { AgentState } from "../../agent/state.js";
import type { KvEntry } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { SpecSigner, generateSigningKeys, type AcceptScope } from "../../shared/signing.js";
import type { StackSpec } from "../../shared/spec.js";
import { LatestRecordSchema, latestOp, type LatestFacts } from "../../shared/stores/latest.js";

const kv = new KvLayout("houston/");
const k1 = generateSigningKeys();
const stranger = generateSigningKeys();
const signer = (k = k1, scope = { prefix: "houston/", cluster: "" }) =>
  new SpecSigner(createPrivateKey(k.privatePem), scope);
const trusted: Map<string, KeyObject> = new Map([[k1.keyId, createPublicKey(k1.publicPem)]]);
const AGENT: AcceptScope = { prefix: "houston/", cluster: "", environment: "prod" };

function entry(key: string, value: string | Buffer): KvEntry {
  return { key, value: Buffer.from(value), modifyIndex: 1, createIndex: 1, flags: 0 };
}
/** the latest record as the controller writes it (signed by `by`; null: unsigned) */
function latest(facts: Partial<LatestFacts> & { generation: number }, by: SpecSigner | null = signer()): KvEntry {
  const f: LatestFacts = { stack: "web", environment: "prod", state: "removed", ...facts };
  const op = latestOp(kv, f, by);
  const value =
    op.verb === "set" ? op.value : JSON.stringify(LatestRecordSchema.parse({ schema: 1, ...f, signature: null }));
  return entry(kv.latest("web"), value);
}
function spec(generation: number): StackSpec {
  return {
    schema: 1,
    stack: "web",
    generation,
    environment: "prod",
    createdAt: "",
    deployment: { type: "standalone", name: "web", version: null, group: null },
    units: [],
  };
}
/** the spec and its signature as the controller writes them */
function specEntries(generation: number): KvEntry[] {
  const s = spec(generation);
  const bytes = Buffer.from(JSON.stringify(s));
  const sig = signer().sign({ kind: "spec", stack: "web", generation, environment: "prod" }, bytes);
  return [entry(kv.spec("web"), bytes), entry(kv.signature("web"), JSON.stringify(sig))];
}
const candidate = (generation: number) => {
  const [s, sig] = specEntries(generation);
  return { stack: "web", key: s!.key, value: s!.value, signature: { key: sig!.key, value: sig!.value } };
};

describe("removalOf: a vanished spec", () => {
  const cases: {
    title: string;
    tombstone: KvEntry | undefined;
    trust?: Map<string, KeyObject> | Error | null;
    scope?: AcceptScope;
    removed: number | null | false;
    reason?: RegExp;
  }[] = [
    { title: "no trusted keys: removed as today", tombstone: undefined, trust: null, removed: null },
    {
      title: "no tombstone: kept, saying so",
      tombstone: undefined,
      removed: false,
      reason: /the spec of web vanished from KV without a signed removal \(no tombstone\): generation 4 keeps running/,
    },
    {
      title: "a signed tombstone above the running generation: removed",
      tombstone: latest({ generation: 5 }),
      removed: 5,
    },
    {
      title: "an unsigned tombstone: kept",
      tombstone: latest({ generation: 5 }, null),
      removed: false,
      reason: /removal is not valid .*the latest record is not signed/,
    },
    {
      title: "a tombstone signed by a key the agent does not trust: kept",
      tombstone: latest({ generation: 5 }, signer(stranger)),
      removed: false,
      reason: /does not trust/,
    },
    {
      title: "a tombstone with its generation raised by hand: kept",
      tombstone: entry(
        kv.latest("web"),
        (latest({ generation: 5 }).value.toString() as string).replace('"generation":5', '"generation":9'),
      ),
      removed: false,
      reason: /signature is for generation 5, not 9/,
    },
    {
      title: "an old tombstone replayed over a later deployment: kept",
      tombstone: latest({ generation: 3 }),
      removed: false,
      reason: /removal is for generation 3, not newer than generation 4 \(a replayed removal\?\)/,
    },
    {
      title: "a latest record that says live: kept",
      tombstone: latest({ generation: 4, state: "live" }),
      removed: false,
      reason: /latest record says generation 4 is live, not removed/,
    },
    {
      title: "a tombstone signed for another environment: kept, naming it",
      tombstone: latest({ generation: 5, environment: "staging" }),
      removed: false,
      reason: /for environment "staging"; this agent is in environment "prod"/,
    },
    {
      title: "a tombstone signed for another prefix: kept, naming it",
      tombstone: latest({ generation: 5 }, signer(k1, { prefix: "houston-staging/", cluster: "" })),
      removed: false,
      reason: /KV prefix "houston-staging\/"/,
    },
    {
      title: "unreadable trusted keys: kept (fail closed)",
      tombstone: latest({ generation: 5 }),
      trust: new Error("bad PEM"),
      removed: false,
      reason: /trusted keys cannot be read/,
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const r = removalOf("web", 4, c.tombstone, c.trust === undefined ? trusted : c.trust, c.scope ?? AGENT);
      if (c.removed === false) {
        expect(r.remove).toBe(false);
        expect(r.remove ? "" : r.reason).toMatch(c.reason!);
      } else expect(r).toEqual({ remove: true, generation: c.removed });
    });
});

describe("acceptSpec: the signed latest record is a floor a fresh host has too", () => {
  const verified = (facts: Partial<LatestFacts> & { generation: number }) =>
    LatestRecordSchema.parse(JSON.parse(latest(facts).value.toString()));
  it("a replayed older signed spec is refused with no memory of its own (a re-imaged host)", () => {
    const r = acceptSpec(candidate(3), trusted, AGENT, undefined, verified({ generation: 5, state: "live" }));
    expect(r.ok ? "accepted" : r.reason).toMatch(
      /generation 3 is older than generation 5, the stack's latest signed generation \(a replayed spec\?\)/,
    );
  });
  it("a signed spec older than, or at, the stack's signed removal is refused", () => {
    const r = acceptSpec(candidate(5), trusted, AGENT, undefined, verified({ generation: 5 }));
    expect(r.ok ? "accepted" : r.reason).toMatch(/the stack was removed at generation 5 \(signed\)/);
  });
  it("the spec the latest record names, or a newer one (a deploy after a removal), is applied", () => {
    expect(acceptSpec(candidate(5), trusted, AGENT, undefined, verified({ generation: 5, state: "live" })).ok).toBe(
      true,
    );
    expect(acceptSpec(candidate(6), trusted, AGENT, undefined, verified({ generation: 5 })).ok).toBe(true);
  });
});

describe("intakeSpecs: removal through the state database", () => {
  it("a spec that vanishes without a tombstone keeps running (refused, saying why); a signed tombstone removes it", () => {
    const state = new AgentState(join(mkdtempSync(join(tmpdir(), "houston-removal-")), "agent.sqlite"));
    expect(intakeSpecs(specEntries(4), kv, state, trusted, AGENT)).toEqual([]);
    expect(state.specs().map((s) => s.generation)).toEqual([4]);
    // deleted by a KV writer: spec and signature gone, nothing signed says so
    const kept = intakeSpecs([], kv, state, trusted, AGENT);
    expect(kept).toEqual([
      expect.objectContaining({ stack: "web", generation: null, reason: expect.stringMatching(/no tombstone/) }),
    ]);
    expect(state.specs().map((s) => s.generation)).toEqual([4]);
    // the controller's removal: the signed tombstone at generation 5
    expect(intakeSpecs([latest({ generation: 5 })], kv, state, trusted, AGENT)).toEqual([]);
    expect(state.specs()).toEqual([]);
    // the old spec written back afterwards (a fresh host would refuse it too: the tombstone is in KV)
    const replay = intakeSpecs([...specEntries(4), latest({ generation: 5 })], kv, state, trusted, AGENT);
    expect(replay.map((r) => r.reason)).toEqual([expect.stringMatching(/older than generation 5 already accepted/)]);
    const fresh = new AgentState(join(mkdtempSync(join(tmpdir(), "houston-removal-")), "agent.sqlite"));
    const freshReplay = intakeSpecs([...specEntries(4), latest({ generation: 5 })], kv, fresh, trusted, AGENT);
    expect(freshReplay.map((r) => r.reason)).toEqual([expect.stringMatching(/removed at generation 5 \(signed\)/)]);
    expect(fresh.specs()).toEqual([]);
  });

  it("without trusted keys a vanished spec is removed as before", () => {
    const state = new AgentState(join(mkdtempSync(join(tmpdir(), "houston-removal-")), "agent.sqlite"));
    intakeSpecs(specEntries(4), kv, state, null, AGENT);
    expect(intakeSpecs([], kv, state, null, AGENT)).toEqual([]);
    expect(state.specs()).toEqual([]);
  });
});
