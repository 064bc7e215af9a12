import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { SpecSignatureSchema, SpecSigner, generateSigningKeys, signatureProblem } from "../../shared/signing.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHUNK_SIZE, fetchArchive, uploadArchive } from "../../shared/archive-store.js";
import { buildArchive } from "../../controller/plan/archive.js";
import { writeSpec, readSpec } from "../../shared/stores/specs.js";
import { ConcurrentChangeError } from "../../shared/errors.js";
import { KvLayout } from "../../shared/kv-layout.js";
import type { StackSpec } from "../../shared/spec.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

let consul: TestConsul;
const kv = new KvLayout("t/");
beforeAll(async () => {
  consul = await startConsul();
});
afterAll(async () => consul?.stop());

describe("archives and specs in a real Consul", () => {
  it("a 20 MB archive goes up in chunks of at most 512 KiB and comes back verified; a second upload sends nothing", async () => {
    const archive = buildArchive([
      { path: "/srv/blob", content: randomBytes(20 * 1024 * 1024), mode: 0o644, owner: "root", group: "root" },
    ]);
    const first = await uploadArchive(consul.client, kv, archive);
    expect(first.uploaded).toBe(Math.ceil(archive.bytes.length / CHUNK_SIZE));
    for (const e of await consul.client.kvList(kv.archive(archive.sha256)))
      expect(e.value.length).toBeLessThanOrEqual(512 * 1024);
    const back = await fetchArchive(consul.client, kv, archive.sha256, 64 << 20);
    expect(back.equals(archive.bytes)).toBe(true);
    await expect(fetchArchive(consul.client, kv, archive.sha256, 1 << 20)).rejects.toThrow(
      /over this agent's limit of 1048576/,
    );
    expect(await uploadArchive(consul.client, kv, archive)).toEqual({ uploaded: 0, skipped: first.uploaded });
  });

  it("an interrupted upload resumes: chunks already present are skipped", async () => {
    const archive = buildArchive([
      { path: "/srv/b", content: randomBytes(3 * CHUNK_SIZE), mode: 0o644, owner: "root", group: "root" },
    ]);
    await consul.client.kvPut(kv.archiveChunk(archive.sha256, 0), archive.bytes.subarray(0, CHUNK_SIZE));
    const r = await uploadArchive(consul.client, kv, archive);
    expect(r).toEqual({ uploaded: 3, skipped: 1 });
  });

  it("a changed chunk is refused by the digest, and chunks holding more than the archive as they arrive", async () => {
    const archive = buildArchive([
      { path: "/srv/c", content: randomBytes(2 * CHUNK_SIZE), mode: 0o644, owner: "root", group: "root" },
    ]);
    await uploadArchive(consul.client, kv, archive);
    const first = kv.archiveChunk(archive.sha256, 0);
    const original = archive.bytes.subarray(0, CHUNK_SIZE);
    // same size, other bytes
    const flipped = Buffer.from(original);
    flipped[0] = flipped[0]! ^ 0xff;
    await consul.client.kvPut(first, flipped);
    await expect(fetchArchive(consul.client, kv, archive.sha256, 64 << 20)).rejects.toThrow(/digest mismatch/);
    // a last chunk that holds more than the archive's recorded size
    const last = kv.archiveChunk(archive.sha256, Math.ceil(archive.bytes.length / CHUNK_SIZE) - 1);
    await consul.client.kvPut(first, original);
    await consul.client.kvPut(last, randomBytes(CHUNK_SIZE));
    await expect(fetchArchive(consul.client, kv, archive.sha256, 64 << 20)).rejects.toThrow(
      /its chunks hold more than the recorded/,
    );
  });

  it("spec writes use CAS: a concurrent change is detected, not overwritten", async () => {
    const spec: StackSpec = {
      schema: 1,
      stack: "s",
      generation: 1,
      environment: "e",
      createdAt: "",
      deployment: { type: "standalone", name: "s", version: null, group: null },
      units: [],
    };
    const idx = await writeSpec(consul.client, kv, spec, { modifyIndex: 0, signer: null });
    // the index comes from the write itself, not from a read that another writer could precede
    expect(idx).toBe((await consul.client.kvGet(kv.spec("s")))?.modifyIndex);
    await expect(
      writeSpec(consul.client, kv, { ...spec, generation: 2 }, { modifyIndex: 0, signer: null }),
    ).rejects.toThrow(ConcurrentChangeError);
    await consul.client.kvPut(kv.spec("s"), JSON.stringify({ ...spec, generation: 7 })); // someone else
    await expect(
      writeSpec(consul.client, kv, { ...spec, generation: 2 }, { modifyIndex: idx, signer: null }),
    ).rejects.toThrow(/changed while this deployment ran/);
    expect((await readSpec(consul.client, kv, "s")).spec?.generation).toBe(7);
  });

  it("a signed spec and its signature are written in one transaction; an unsigned write drops a stale signature", async () => {
    const keys = generateSigningKeys();
    const signer = new SpecSigner(createPrivateKey(keys.privatePem), { prefix: kv.prefix, cluster: "" });
    const trusted = new Map([[keys.keyId, createPublicKey(keys.publicPem)]]);
    const spec: StackSpec = {
      schema: 1,
      stack: "signed",
      generation: 1,
      environment: "e",
      createdAt: "",
      deployment: { type: "standalone", name: "signed", version: null, group: null },
      units: [],
    };
    const idx = await writeSpec(consul.client, kv, spec, { modifyIndex: 0, signer: signer });
    const sig = SpecSignatureSchema.parse(
      JSON.parse(String((await consul.client.kvGet(kv.signature("signed")))?.value)),
    );
    const bytes = (await consul.client.kvGet(kv.spec("signed")))!.value;
    const subject = { kind: "spec" as const, stack: "signed", generation: 1, environment: "e" };
    const scope = { prefix: kv.prefix, cluster: "", environment: "e" };
    expect(signatureProblem(subject, bytes, sig, trusted, scope)).toBeNull();
    expect(signatureProblem(subject, Buffer.concat([bytes, Buffer.from(" ")]), sig, trusted, scope)).toMatch(
      /does not match/,
    );
    await writeSpec(consul.client, kv, { ...spec, generation: 2 }, { modifyIndex: idx, signer: null });
    expect(await consul.client.kvGet(kv.signature("signed"))).toBeNull();
  });
});
