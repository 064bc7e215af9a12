/**
 * Writing desired state into KV: content-addressed archives (chunks already present are skipped)
 * and stack specs with CAS on their ModifyIndex (a concurrent change is detected, not overwritten).
 */
import type { Consul } from "../../shared/consul.js";
import { HoustonError } from "../../shared/errors.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import {
  ArchiveMetaSchema,
  SCHEMA_VERSION,
  StackSpecSchema,
  decodeJson,
  type ArchiveMeta,
  type StackSpec,
} from "../../shared/spec.js";
import type { SpecSigner } from "../../shared/signing.js";
import { chunk, type BuiltArchive } from "../plan/archive.js";

export class ConcurrentChangeError extends HoustonError {}

/** Uploads an archive unless it is complete in KV already; meta is written last (it marks completeness). */
export async function uploadArchive(
  consul: Consul,
  kv: KvLayout,
  archive: BuiltArchive,
): Promise<{ uploaded: number; skipped: number }> {
  const metaKey = kv.archiveMeta(archive.sha256);
  const existing = await consul.kvGet(metaKey);
  const parts = chunk(archive.bytes);
  if (existing) {
    decodeJson(ArchiveMetaSchema, metaKey, existing.value);
    return { uploaded: 0, skipped: parts.length };
  }
  const present = new Set(await consul.kvKeys(kv.archive(archive.sha256)));
  let uploaded = 0;
  for (const [n, part] of parts.entries()) {
    const key = kv.archiveChunk(archive.sha256, n);
    if (present.has(key)) continue; // same digest, same chunking: a present chunk has the right bytes
    await consul.kvPut(key, part);
    uploaded++;
  }
  const meta: ArchiveMeta = {
    schema: SCHEMA_VERSION,
    sha256: archive.sha256,
    size: archive.bytes.length,
    chunks: parts.length,
    files: archive.files,
  };
  await consul.kvPut(metaKey, JSON.stringify(meta));
  return { uploaded, skipped: parts.length - uploaded };
}

export async function readSpecAt(
  consul: Consul,
  kv: KvLayout,
  stack: string,
): Promise<{ spec: StackSpec | null; modifyIndex: number }> {
  const key = kv.spec(stack);
  const entry = await consul.kvGet(key);
  if (!entry) return { spec: null, modifyIndex: 0 };
  return { spec: decodeJson(StackSpecSchema, key, entry.value), modifyIndex: entry.modifyIndex };
}

/**
 * Writes the spec only if the key is still at `modifyIndex` (0: only if absent), with its signature
 * (or without a stale one) in the same transaction; returns the new ModifyIndex from that write.
 */
export async function writeSpec(
  consul: Consul,
  kv: KvLayout,
  spec: StackSpec,
  modifyIndex: number,
  signer: SpecSigner | null,
): Promise<number> {
  StackSpecSchema.parse(spec);
  const key = kv.spec(spec.stack);
  const bytes = Buffer.from(JSON.stringify(spec));
  const sigKey = kv.signature(spec.stack);
  const res = await consul.txn([
    { verb: "cas", key, value: bytes, index: modifyIndex },
    signer
      ? { verb: "set", key: sigKey, value: JSON.stringify(signer.sign(spec.stack, spec.generation, bytes)) }
      : { verb: "delete", key: sigKey },
  ]);
  if (!res.ok)
    throw new ConcurrentChangeError(
      `${key} changed while this deployment ran (expected ModifyIndex ${modifyIndex}); not overwriting it`,
    );
  return res.indexes[0] ?? modifyIndex;
}

export async function deleteSpec(consul: Consul, kv: KvLayout, stack: string, modifyIndex: number): Promise<void> {
  const res = await consul.txn([
    { verb: "delete-cas", key: kv.spec(stack), index: modifyIndex },
    { verb: "delete", key: kv.signature(stack) },
  ]);
  if (!res.ok) throw new ConcurrentChangeError(`${kv.spec(stack)} changed while removing it; not deleting`);
}
