/**
 * Deterministic file archives: the same files give the same bytes and so the same sha256
 * (sorted paths, fixed mtime, uid/gid 0 with owner/group by name, no directories).
 * Stored in KV split into chunks of at most CHUNK_SIZE.
 */
import { createHash } from "node:crypto";
import { Header, Pax } from "tar";
import type { ArchiveMeta } from "../../shared/spec.js";
import type { FileEntry } from "./inputs.js";

export const CHUNK_SIZE = 512 * 1024;
const BLOCK = 512;
const MTIME = new Date(0);

export interface BuiltArchive {
  sha256: string;
  bytes: Buffer;
  files: ArchiveMeta["files"];
}

export function buildArchive(entries: FileEntry[]): BuiltArchive {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  for (const f of sorted) {
    const rel = f.path.replace(/^\/+/, "");
    const data = {
      path: rel,
      mode: f.mode,
      uid: 0,
      gid: 0,
      size: f.content.length,
      mtime: MTIME,
      type: "File" as const,
      uname: f.owner,
      gname: f.group,
    };
    const header = new Header(data);
    const block = Buffer.alloc(BLOCK);
    if (header.encode(block, 0)) {
      // a path or name too long for ustar: a PAX extended header carries it (deterministically)
      parts.push(new Pax({ path: rel, uname: f.owner, gname: f.group, mtime: MTIME }, false).encode());
    }
    parts.push(block, f.content);
    const pad = (BLOCK - (f.content.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  const bytes = Buffer.concat(parts);
  return {
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bytes,
    files: sorted.map((f) => ({ path: f.path, mode: f.mode, owner: f.owner, group: f.group })),
  };
}

export function chunk(bytes: Buffer, size = CHUNK_SIZE): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += size) out.push(bytes.subarray(off, off + size));
  return out.length ? out : [Buffer.alloc(0)];
}
