/**
 * Signed specs as the agent sees them: what it applies and what it refuses (and why), for the
 * attacks a KV writer without the signing key could try.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RefusalLog, acceptSpec, type SpecCandidate } from "../../agent/accept.js";
import { parseAgentConfig } from "../../agent/config.js";
import {
  SpecSigner,
  TrustStore,
  generateSigningKeys,
  type AcceptScope,
  type SigningScope,
} from "../../shared/signing.js";
import type { StackSpec } from "../../shared/spec.js";

const k1 = generateSigningKeys();
const k2 = generateSigningKeys();
const stranger = generateSigningKeys();
const SCOPE = { prefix: "houston/", cluster: "" };
/** this agent: prefix houston/, no cluster, environment "test" */
const AGENT: AcceptScope = { ...SCOPE, environment: "test" };
const signer = (k: { privatePem: string }, scope: SigningScope = SCOPE) =>
  new SpecSigner(createPrivateKey(k.privatePem), scope);
const trust = (...ks: { publicPem: string; keyId: string }[]): Map<string, KeyObject> =>
  new Map(ks.map((k) => [k.keyId, createPublicKey(k.publicPem)]));

const archive = "a".repeat(64);
function spec(
  generation: number,
  text = "[Service]\nExecStart=/bin/sleep infinity\n",
  digest = archive,
  environment = "test",
): StackSpec {
  return {
    schema: 1,
    stack: "web",
    generation,
    environment,
    createdAt: "",
    deployment: { type: "standalone", name: "web", version: null, group: null },
    units: [
      {
        name: `web-file-deploy@${digest.slice(0, 8)}.service`,
        stack: "web",
        component: "file-deploy",
        group: null,
        version: digest.slice(0, 8),
        role: "archive",
        text: "[Service]\nExecStart=/bin/true\n",
        placements: [{ global: true, metadata: {} }],
        archive: digest,
      },
      {
        name: "web-app@1.service",
        stack: "web",
        component: "app",
        group: null,
        version: "1",
        role: "dependency",
        text,
        placements: [{ global: true, metadata: {} }],
      },
    ],
  };
}
function candidate(s: StackSpec, by: SpecSigner | null, edit?: (bytes: Buffer) => Buffer): SpecCandidate {
  const bytes = Buffer.from(JSON.stringify(s));
  const signature = by
    ? {
        key: "houston/stacks/web/signature",
        value: Buffer.from(
          JSON.stringify(
            by.sign({ kind: "spec", stack: s.stack, generation: s.generation, environment: s.environment }, bytes),
          ),
        ),
      }
    : null;
  return { stack: "web", key: "houston/stacks/web/spec", value: edit ? edit(bytes) : bytes, signature };
}
const swap = (from: string, to: string) => (b: Buffer) => Buffer.from(b.toString().replace(from, to));

describe("acceptSpec", () => {
  const cases: {
    title: string;
    c: SpecCandidate;
    trusted: Map<string, KeyObject> | null;
    highest?: number;
    /** the spec in force (the one accepted at `highest`) */
    current?: StackSpec;
    /** the agent's scope; default AGENT */
    scope?: AcceptScope;
    refused: RegExp | null;
  }[] = [
    {
      title: "no trusted keys: an unsigned spec is applied",
      c: candidate(spec(1), null),
      trusted: null,
      refused: null,
    },
    {
      title: "a spec signed by a trusted key is applied",
      c: candidate(spec(1), signer(k1)),
      trusted: trust(k1),
      refused: null,
    },
    {
      title: "unsigned, with trusted keys: refused",
      c: candidate(spec(1), null),
      trusted: trust(k1),
      refused: /not signed and this agent trusts only signed specs/,
    },
    {
      title: "tampered unit text: refused",
      c: candidate(spec(1), signer(k1), swap("/bin/sleep infinity", "/bin/sh -c evil")),
      trusted: trust(k1),
      refused: /does not match the spec \(tampered\?\)/,
    },
    {
      title: "tampered archive digest: refused",
      c: candidate(spec(1), signer(k1), swap(`"archive":"${archive}"`, `"archive":"${"b".repeat(64)}"`)),
      trusted: trust(k1),
      refused: /does not match the spec/,
    },
    {
      title: "signed by a key the agent does not trust: refused",
      c: candidate(spec(1), signer(stranger)),
      trusted: trust(k1),
      refused: new RegExp(`signed by key ${stranger.keyId}, which this agent does not trust`),
    },
    {
      title: "a replayed older signed spec: refused",
      c: candidate(spec(3), signer(k1)),
      trusted: trust(k1),
      highest: 5,
      refused: /generation 3 is older than generation 5 already accepted/,
    },
    {
      title: "the same generation again (the spec in force, re-read): applied",
      c: candidate(spec(5), signer(k1)),
      trusted: trust(k1),
      highest: 5,
      current: spec(5),
      refused: null,
    },
    {
      title: "another signed spec at the generation already accepted: refused (generations strictly increase)",
      c: candidate(spec(5, "[Service]\nExecStart=/bin/sleep 1\n"), signer(k1)),
      trusted: trust(k1),
      highest: 5,
      current: spec(5),
      refused: /generation 5 was already accepted with other contents; a new spec needs a greater generation/,
    },
    {
      title: "the generation already accepted, with nothing in force to compare (a removed stack's): refused",
      c: candidate(spec(5), signer(k1)),
      trusted: trust(k1),
      highest: 5,
      refused: /generation 5 was already accepted with other contents/,
    },
    {
      title: "rotation: either of two trusted keys is accepted (old)",
      c: candidate(spec(6), signer(k1)),
      trusted: trust(k1, k2),
      highest: 5,
      refused: null,
    },
    {
      title: "rotation: either of two trusted keys is accepted (new)",
      c: candidate(spec(6), signer(k2)),
      trusted: trust(k1, k2),
      highest: 5,
      refused: null,
    },
    {
      title: "a spec signed for another environment (staging), copied into prod: refused, naming both",
      c: candidate(spec(7, undefined, undefined, "staging"), signer(k1)),
      trusted: trust(k1),
      highest: 5,
      scope: { ...AGENT, environment: "prod" },
      refused: /the spec is for environment "staging"; this agent is in environment "prod"/,
    },
    {
      title: "no environment configured: a spec for any environment is applied (prefix and cluster still bind)",
      c: candidate(spec(7, undefined, undefined, "staging"), signer(k1)),
      trusted: trust(k1),
      scope: { ...AGENT, environment: null },
      refused: null,
    },
    {
      title: "an environment edited in the spec's bytes: the signature does not match",
      c: candidate(
        spec(7, undefined, undefined, "staging"),
        signer(k1),
        swap('"environment":"staging"', '"environment":"test"'),
      ),
      trusted: trust(k1),
      refused: /signature is for environment "staging", not "test"/,
    },
    {
      title: "a spec signed for another KV prefix, copied into this one: refused, naming both",
      c: candidate(spec(7), signer(k1, { prefix: "houston-staging/", cluster: "" })),
      trusted: trust(k1),
      refused: /signature is for KV prefix "houston-staging\/"; this agent reads "houston\/"/,
    },
    {
      title: "a spec signed for another cluster: refused, naming both",
      c: candidate(spec(7), signer(k1, { prefix: "houston/", cluster: "east" })),
      trusted: trust(k1),
      scope: { ...AGENT, cluster: "west" },
      refused: /signature is for cluster "east"; this agent is in cluster "west"/,
    },
    {
      title: "a signature record that lies about its scope does not verify",
      c: (() => {
        const c = candidate(spec(7), signer(k1, { prefix: "houston-staging/", cluster: "" }));
        const sig = JSON.parse(c.signature!.value.toString()) as Record<string, unknown>;
        return {
          ...c,
          signature: { ...c.signature!, value: Buffer.from(JSON.stringify({ ...sig, prefix: "houston/" })) },
        };
      })(),
      trusted: trust(k1),
      refused: /does not match the spec \(tampered\?\)/,
    },
    {
      title: "a signature of the first format (stack and generation only): refused, saying why",
      c: {
        ...candidate(spec(7), null),
        signature: {
          key: "houston/stacks/web/signature",
          value: Buffer.from(
            JSON.stringify({
              schema: 1,
              algorithm: "ed25519",
              keyId: k1.keyId,
              stack: "web",
              generation: 7,
              signature: "AAAA",
            }),
          ),
        },
      },
      trusted: trust(k1),
      refused: /signed in the first format \(houston-spec-v1\), which binds neither environment, KV prefix nor cluster/,
    },
  ];
  for (const { title, c, trusted, highest, current, scope, refused } of cases) {
    it(title, () => {
      const r = acceptSpec(c, trusted, scope ?? AGENT, highest, null, current);
      if (refused === null) expect(r).toMatchObject({ ok: true });
      else expect(r.ok ? "accepted" : r.reason).toMatch(refused);
    });
  }

  it("a signature copied from another generation or stack does not verify", () => {
    const s1 = candidate(spec(1), signer(k1));
    const s2 = candidate(spec(2), null);
    expect(acceptSpec({ ...s2, signature: s1.signature }, trust(k1), AGENT, undefined)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/signature is for generation 1, not 2/),
    });
  });

  it("unreadable trusted keys fail closed", () => {
    expect(
      acceptSpec(
        candidate(spec(1), signer(k1)),
        new Error("trusted key /etc/houston/trust/x.pub: bad PEM"),
        AGENT,
        undefined,
      ),
    ).toMatchObject({ ok: false, reason: expect.stringMatching(/trusted keys cannot be read/) });
  });

  it("a trust directory is read again on each use: a key added later is trusted (rotation without restart)", () => {
    const dir = mkdtempSync(join(tmpdir(), "houston-trust-"));
    writeFileSync(join(dir, "old.pub"), k1.publicPem);
    const store = new TrustStore([dir]);
    expect([...store.keys().keys()]).toEqual([k1.keyId]);
    writeFileSync(join(dir, "new.pub"), k2.publicPem);
    expect(new Set(store.keys().keys())).toEqual(new Set([k1.keyId, k2.keyId]));
    writeFileSync(join(dir, "broken.pub"), "not a key");
    expect(() => store.keys()).toThrow(/trusted key .*broken.pub/);
  });
});

describe("RefusalLog", () => {
  const unsigned = { stack: "web", generation: 9, reason: "the spec is not signed" };
  it("says a refusal once while it stays in force", () => {
    const log = new RefusalLog();
    expect(log.lines([unsigned])).toEqual(["refused generation 9 of web: the spec is not signed"]);
    expect(log.lines([unsigned])).toEqual([]);
    expect(log.lines([unsigned, { stack: "db", generation: null, reason: "bad JSON" }])).toEqual([
      "refused the spec of db: bad JSON",
    ]);
  });
  it("a new generation or another reason is said again; so is a refusal that ended and came back", () => {
    const log = new RefusalLog();
    log.lines([unsigned]);
    expect(log.lines([{ ...unsigned, generation: 10 }])).toHaveLength(1);
    expect(log.lines([{ ...unsigned, generation: 10, reason: "signed by a stranger" }])).toHaveLength(1);
    expect(log.lines([])).toEqual([]);
    expect(log.lines([unsigned])).toHaveLength(1);
  });
});

describe("the agent's scope settings", () => {
  it("--environment / HOUSTON_ENVIRONMENT and --cluster / HOUSTON_CLUSTER (flags win); unset: any environment, no cluster", () => {
    expect(parseAgentConfig([], {})).toMatchObject({ environment: null, cluster: "" });
    expect(parseAgentConfig([], { HOUSTON_ENVIRONMENT: "prod", HOUSTON_CLUSTER: "east" })).toMatchObject({
      environment: "prod",
      cluster: "east",
    });
    expect(
      parseAgentConfig(["--environment", "staging", "--cluster", "west"], { HOUSTON_ENVIRONMENT: "prod" }),
    ).toMatchObject({ environment: "staging", cluster: "west" });
    expect(() => parseAgentConfig(["--cluster", "a/b"], {})).toThrow(/--cluster "a\/b"/);
    expect(() => parseAgentConfig(["--environment", ""], {})).toThrow(/--environment/);
  });
});

describe("--signing-key that is not a private key", () => {
  it("says what the file is and how to make one, not only OpenSSL's code", () => {
    const dir = mkdtempSync(join(tmpdir(), "houston-badkey-"));
    const pub = join(dir, "k.pub");
    writeFileSync(pub, generateSigningKeys().publicPem);
    const text = join(dir, "notes.txt");
    writeFileSync(text, "hello\n");
    const scope = { prefix: "houston/", cluster: "" };
    expect(() => SpecSigner.fromFile(pub, scope)).toThrow(/k\.pub: a public key, not the private one \(houston keygen/);
    expect(() => SpecSigner.fromFile(text, scope)).toThrow(/notes\.txt: not a PEM private key/);
  });
});
