/**
 * Deterministic file archives: the same files give the same bytes and so the same sha256
 * (sorted paths, fixed mtime, uid/gid 0 with owner/group by name, no directories).
 * Stored in KV by shared/archive-store.ts.
 */
import { createHash } from "node:crypto";
import { Header, Pax } from "tar";
import type { StoredArchive } from "../../shared/archive-store.js";
import type { FileEntry } from "./inputs.js";

const BLOCK = 512;
const MTIME = new Date(0);

/** What the archive store keeps (shared/archive-store.ts) */
export type BuiltArchive = StoredArchive;

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
