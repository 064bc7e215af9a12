/**
 * The archive store in Consul KV, both sides of it: content-addressed archives split into chunks
 * of at most CHUNK_SIZE (Consul's values hold 512 KiB), uploaded with what is already there
 * skipped and the meta key written last (it marks the upload complete); fetched and verified
 * (size and sha256) before anyone parses a byte of it.
 */
import { createHash } from "node:crypto";
import type { Consul } from "./consul.js";
import { ArchiveRejectedError } from "./errors.js";
import type { KvLayout } from "./kv-layout.js";
import { ArchiveMetaSchema, SCHEMA_VERSION, decodeJson, type ArchiveMeta } from "./spec.js";

export const CHUNK_SIZE = 512 * 1024;

/** An archive as the planner built it. */
export interface StoredArchive {
  sha256: string;
  bytes: Buffer;
  files: ArchiveMeta["files"];
}

export function chunk(bytes: Buffer, size = CHUNK_SIZE): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += size) out.push(bytes.subarray(off, off + size));
  return out.length ? out : [Buffer.alloc(0)];
}

/** Uploads an archive unless it is complete in KV already; meta is written last (it marks completeness). */
export async function uploadArchive(
  consul: Consul,
  kv: KvLayout,
  archive: StoredArchive,
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

/** Fetches all chunks and checks size and sha256 against the digest the spec names. */
export async function fetchArchive(consul: Consul, kv: KvLayout, sha: string, maxBytes: number): Promise<Buffer> {
  const metaKey = kv.archiveMeta(sha);
  const metaEntry = await consul.kvGet(metaKey);
  if (!metaEntry) throw new ArchiveRejectedError(`archive ${sha} is not in Consul (${metaKey} missing)`);
  const meta = decodeJson(ArchiveMetaSchema, metaKey, metaEntry.value);
  if (meta.size > maxBytes)
    throw new ArchiveRejectedError(
      `archive ${sha} is ${meta.size} bytes, over this agent's limit of ${maxBytes} (--max-archive-size); not fetched`,
    );
  if (meta.chunks > Math.ceil(meta.size / 65536) + 1)
    throw new ArchiveRejectedError(`archive ${sha}: ${meta.chunks} chunks for ${meta.size} bytes; not fetched`);
  const chunks: Buffer[] = [];
  let fetched = 0;
  for (let n = 0; n < meta.chunks; n++) {
    // raw: Consul sends the bytes as stored, neither it nor the agent spends CPU on base64 and JSON
    const value = await consul.kvGetRaw(kv.archiveChunk(sha, n));
    if (!value) throw new ArchiveRejectedError(`archive ${sha}: chunk ${kv.archiveChunk(sha, n)} missing`);
    fetched += value.length;
    if (fetched > meta.size)
      throw new ArchiveRejectedError(`archive ${sha}: its chunks hold more than the recorded ${meta.size} bytes`);
    chunks.push(value);
  }
  const bytes = Buffer.concat(chunks);
  return verifyArchive(bytes, sha, meta.size);
}

export function verifyArchive(bytes: Buffer, sha: string, size?: number): Buffer {
  if (size !== undefined && bytes.length !== size)
    throw new ArchiveRejectedError(`archive ${sha}: size ${bytes.length} differs from the recorded ${size}`);
  const got = createHash("sha256").update(bytes).digest("hex");
  if (got !== sha)
    throw new ArchiveRejectedError(`archive ${sha}: digest mismatch (content hashes to ${got}); nothing written`);
  return bytes;
}
