/**
 * File archives on a host: fetch the chunks from KV and verify the digest before anything is
 * written; parse and validate every entry (no '..', nothing escaping the root, no hardlinks,
 * devices or fifos, no path through a symlink); then write each file atomically (temp + rename)
 * with its mode and owner. A file that exists and Houston did not create is never overwritten.
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync, chownSync, chmodSync } from "node:fs";
import { dirname, isAbsolute, join, posix, relative } from "node:path";
import { Parser, type ReadEntry } from "tar";
import type { Consul } from "../shared/consul.js";
import { ArchiveRejectedError } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import { ArchiveMetaSchema, decodeJson } from "../shared/spec.js";
import type { AgentState } from "./state.js";

export interface ArchiveEntry {
  /** root-relative, normalised, no leading '/' */
  path: string;
  type: "file" | "symlink";
  mode: number;
  uname: string;
  gname: string;
  uid: number;
  gid: number;
  data: Buffer;
  linkTarget?: string;
}

/** Fetches all chunks and checks size and sha256 against the digest the spec names. */
export async function fetchArchive(consul: Consul, kv: KvLayout, sha: string): Promise<Buffer> {
  const metaKey = kv.archiveMeta(sha);
  const metaEntry = await consul.kvGet(metaKey);
  if (!metaEntry) throw new ArchiveRejectedError(`archive ${sha} is not in Consul (${metaKey} missing)`);
  const meta = decodeJson(ArchiveMetaSchema, metaKey, metaEntry.value);
  const chunks: Buffer[] = [];
  for (let n = 0; n < meta.chunks; n++) {
    const e = await consul.kvGet(kv.archiveChunk(sha, n));
    if (!e) throw new ArchiveRejectedError(`archive ${sha}: chunk ${kv.archiveChunk(sha, n)} missing`);
    chunks.push(e.value);
  }
  const bytes = Buffer.concat(chunks);
  return verifyArchive(bytes, sha, meta.size);
}

export function verifyArchive(bytes: Buffer, sha: string, size?: number): Buffer {
  if (size !== undefined && bytes.length !== size) throw new ArchiveRejectedError(`archive ${sha}: size ${bytes.length} differs from the recorded ${size}`);
  const got = createHash("sha256").update(bytes).digest("hex");
  if (got !== sha) throw new ArchiveRejectedError(`archive ${sha}: digest mismatch (content hashes to ${got}); nothing written`);
  return bytes;
}

/** Parses a tar archive fully in memory and validates every entry; throws before anything is written. */
export async function parseArchive(bytes: Buffer, sha: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  const problems: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({ strict: true });
    parser.on("entry", (entry: ReadEntry) => {
      const chunks: Buffer[] = [];
      entry.on("data", (c: Buffer) => chunks.push(c));
      entry.on("end", () => {
        try {
          const e = toEntry(entry, Buffer.concat(chunks));
          if (e) entries.push(e);
        } catch (err) {
          problems.push(err instanceof Error ? err.message : String(err));
        }
      });
    });
    parser.on("error", (err: unknown) => reject(new ArchiveRejectedError(`archive ${sha} is not a valid tar: ${String(err)}`)));
    parser.on("end", () => resolve());
    parser.end(bytes);
  });
  const symlinks = entries.filter((e) => e.type === "symlink").map((e) => e.path);
  for (const e of entries) {
    if (symlinks.some((s) => e.path.startsWith(`${s}/`))) problems.push(`${e.path}: path goes through a symlink of the archive`);
  }
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.path)) problems.push(`${e.path}: listed twice`);
    seen.add(e.path);
  }
  if (problems.length) throw new ArchiveRejectedError(`archive ${sha} rejected, nothing written: ${problems.join("; ")}`);
  return entries;
}

function toEntry(entry: ReadEntry, data: Buffer): ArchiveEntry | null {
  const raw = entry.path;
  const rel = posix.normalize(raw.replace(/^\/+/, ""));
  if (raw.split("/").includes("..") || rel.startsWith("..") || rel === "." || rel === "") throw new Error(`${raw}: path escapes the root ('..')`);
  const base = { path: rel.replace(/\/$/, ""), mode: (entry.mode ?? 0o644) & 0o7777, uname: entry.uname ?? "", gname: entry.gname ?? "", uid: entry.uid ?? 0, gid: entry.gid ?? 0, data };
  switch (entry.type) {
    case "File":
    case "OldFile":
    case "ContiguousFile":
      return { ...base, type: "file" };
    case "Directory":
      return null; // directories are made as needed (0755), never taken from the archive
    case "SymbolicLink": {
      const target = entry.linkpath ?? "";
      const resolved = target.startsWith("/") ? posix.normalize(target.slice(1)) : posix.normalize(posix.join(posix.dirname(rel), target));
      if (resolved.startsWith("..") || resolved === "..") throw new Error(`${raw}: symlink to ${target} points outside the root`);
      return { ...base, type: "symlink", linkTarget: target };
    }
    case "Link":
      throw new Error(`${raw}: hard links are not accepted`);
    default:
      throw new Error(`${raw}: entry type ${entry.type} is not accepted (only files and symlinks)`);
  }
}

/** user/group names → ids from the root's own /etc/passwd and /etc/group */
export function idResolver(root: string): { uid(name: string, fallback: number): number; gid(name: string, fallback: number): number } {
  const table = (file: string): Map<string, number> => {
    try {
      return new Map(readFileSync(join(root, file), "utf8").split("\n").filter(Boolean).map((l) => l.split(":")).map((f) => [f[0] ?? "", Number(f[2])]));
    } catch {
      return new Map();
    }
  };
  const users = table("etc/passwd");
  const groups = table("etc/group");
  const look = (map: Map<string, number>, kind: string) => (name: string, fallback: number): number => {
    if (name === "") return fallback;
    if (/^\d+$/.test(name)) return Number(name);
    const id = map.get(name);
    if (id === undefined || Number.isNaN(id)) throw new ArchiveRejectedError(`${kind} ${name} does not exist on this host`);
    return id;
  };
  return { uid: look(users, "user"), gid: look(groups, "group") };
}

/**
 * Writes the validated entries under root. Checks first (owners exist, nothing foreign in the way,
 * parents stay inside root), claims every path in the state, then writes each file temp + rename.
 */
export function installArchive(entries: ArchiveEntry[], sha: string, stack: string, root: string, state: AgentState): void {
  const realRoot = realpathSync(root);
  const ids = idResolver(root);
  const problems: string[] = [];
  const dirs = new Map<string, boolean>(); // root-relative dir → exists
  const plan = entries.map((e) => {
    let uid = 0;
    let gid = 0;
    try {
      uid = ids.uid(e.uname, e.uid);
      gid = ids.gid(e.gname, e.gid);
    } catch (err) {
      problems.push(`/${e.path}: ${(err as Error).message}`);
    }
    const abs = join(root, e.path);
    const existing = lstatOrNull(abs);
    if (existing && state.fileOwner(`/${e.path}`) === null) problems.push(`/${e.path} exists and was not created by Houston; refusing to overwrite it`);
    if (existing?.isDirectory()) problems.push(`/${e.path} is a directory`);
    for (let d = posix.dirname(e.path); d !== "." && !dirs.has(d); d = posix.dirname(d)) {
      const st = lstatOrNull(join(root, d));
      dirs.set(d, st !== null);
      if (st && !st.isDirectory() && !st.isSymbolicLink()) problems.push(`/${d} is in the way (not a directory)`);
      if (st) {
        const real = realpathSync(join(root, d));
        if (!isInside(realRoot, real)) problems.push(`/${d} leads outside the root (${real})`);
      }
    }
    return { e, abs, uid, gid };
  });
  if (problems.length) throw new ArchiveRejectedError(`archive ${sha} rejected, nothing written: ${problems.join("; ")}`);

  const newDirs = [...dirs].filter(([, exists]) => !exists).map(([d]) => d).sort((a, b) => a.length - b.length);
  state.claimFiles(sha, [...newDirs.map((d) => ({ path: `/${d}`, kind: "dir" as const })), ...entries.map((e) => ({ path: `/${e.path}`, kind: "file" as const }))]);
  for (const d of newDirs) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
  for (const { e, abs, uid, gid } of plan) {
    const tmp = join(dirname(abs), `.${posix.basename(e.path)}.houston-tmp-${process.pid}`);
    if (e.type === "symlink") {
      symlinkSync(e.linkTarget ?? "", tmp);
    } else {
      writeFileSync(tmp, e.data, { mode: 0o600 });
      chownSync(tmp, uid, gid);
      chmodSync(tmp, e.mode);
    }
    renameSync(tmp, abs);
  }
  state.markArchiveInstalled(sha, stack);
}

/** Removes the files (and empty directories) this archive created and still owns. */
export function removeArchive(sha: string, root: string, state: AgentState): void {
  for (const f of state.filesOf(sha)) {
    const abs = join(root, f.path);
    try {
      if (f.kind === "dir") rmdirSync(abs);
      else unlinkSync(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
    }
    state.forgetFile(f.path);
  }
  state.forgetArchive(sha);
}

function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

function lstatOrNull(p: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}
