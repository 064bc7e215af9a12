/**
 * File archives on a host: fetch the chunks from KV and verify the digest before anything is
 * written; parse (a plain tar only: never a compressed one) and validate every entry (no '..',
 * nothing escaping the root, no hardlinks, devices or fifos, no path through a symlink); then
 * write each file through safe-fs.ts (safe directories only, exclusive temp file, owner and mode
 * on the descriptor, rename). A file that exists and Houston did not create, or that another
 * stack's archive owns, is never overwritten;
 * except a file the original Houston's archive of the same stack wrote (recorded by `houston
 * adopt`): that one is taken over, and never deleted; what it held is kept so that removing the
 * archive before a deploy of the stack was confirmed (a failed deploy's restore) puts it back.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync } from "node:fs";
import { join, posix, relative } from "node:path";
import type { ReadEntry } from "tar";
import { ArchiveRejectedError, errorText } from "../shared/errors.js";
import {
  isInside,
  kernelResolve,
  lstatOrNull,
  makeDirectories,
  removeSafely,
  resolveDirectory,
  writeFileSafely,
  writeSymlinkSafely,
} from "./safe-fs.js";
import type { AgentState, OriginalFile } from "./state.js";
import { hiddenNameProblems } from "./tar-scan.js";

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

/** Parses a tar archive fully in memory and validates every entry; throws before anything is written. */
export async function parseArchive(bytes: Buffer, sha: string): Promise<ArchiveEntry[]> {
  const compressed = compression(bytes);
  if (compressed)
    throw new ArchiveRejectedError(
      `archive ${sha} is compressed (${compressed}); the agent reads only plain tar archives, as the controller builds them; nothing written`,
    );
  const entries: ArchiveEntry[] = [];
  // names the parser would cut at a NUL are refused here: the parser would never show them
  const problems: string[] = hiddenNameProblems(bytes);
  // loaded on the first archive, not at start: an idle agent does not carry tar (README, Benchmarks)
  const { Parser } = await import("tar");
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({ strict: true, brotli: false, zstd: false });
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
    parser.on("error", (err: unknown) =>
      reject(new ArchiveRejectedError(`archive ${sha} is not a valid tar: ${String(err)}`)),
    );
    parser.on("end", () => resolve());
    parser.end(bytes);
  });
  const symlinks = entries.filter((e) => e.type === "symlink").map((e) => e.path);
  for (const e of entries) {
    if (symlinks.some((s) => e.path.startsWith(`${s}/`)))
      problems.push(`${e.path}: path goes through a symlink of the archive`);
  }
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.path)) problems.push(`${e.path}: listed twice`);
    seen.add(e.path);
  }
  if (problems.length)
    throw new ArchiveRejectedError(`archive ${sha} rejected, nothing written: ${problems.join("; ")}`);
  return entries;
}

/**
 * The compression node-tar's parser would undo by itself (it sniffs gzip and zstd): a compressed
 * archive would hide its headers from hiddenNameProblems and grow in memory far past the size the
 * agent allowed (--max-archive-size) before any check. The controller never compresses one.
 */
function compression(bytes: Buffer): string | null {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return "gzip";
  if (bytes.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return "zstd";
  return null;
}

// control characters in names would make logs, reports and unit text lie
const CONTROL = /[\u0000-\u001f\u007f]/;

function toEntry(entry: ReadEntry, data: Buffer): ArchiveEntry | null {
  const raw = entry.path;
  if (CONTROL.test(raw)) throw new Error(`${JSON.stringify(raw)}: control characters in a path are not accepted`);
  if ((entry.mode ?? 0) & 0o6000)
    throw new Error(`${raw}: setuid/setgid bits are not accepted (mode ${((entry.mode ?? 0) & 0o7777).toString(8)})`);
  const rel = posix.normalize(raw.replace(/^\/+/, ""));
  if (raw.split("/").includes("..") || rel.startsWith("..") || rel === "." || rel === "")
    throw new Error(`${raw}: path escapes the root ('..')`);
  const base = {
    path: rel.replace(/\/$/, ""),
    mode: (entry.mode ?? 0o644) & 0o7777,
    uname: entry.uname ?? "",
    gname: entry.gname ?? "",
    uid: entry.uid ?? 0,
    gid: entry.gid ?? 0,
    data,
  };
  switch (entry.type) {
    case "File":
    case "OldFile":
    case "ContiguousFile":
      return { ...base, type: "file" };
    case "Directory":
      return null; // directories are made as needed (0755), never taken from the archive
    case "SymbolicLink": {
      const target = entry.linkpath ?? "";
      if (target === "" || CONTROL.test(target))
        throw new Error(`${raw}: symlink target ${JSON.stringify(target)} is not accepted`);
      const resolved = target.startsWith("/")
        ? posix.normalize(target.slice(1))
        : posix.normalize(posix.join(posix.dirname(rel), target));
      if (resolved.startsWith("..") || resolved === "..")
        throw new Error(`${raw}: symlink to ${target} points outside the root`);
      return { ...base, type: "symlink", linkTarget: target };
    }
    case "Link":
      throw new Error(`${raw}: hard links are not accepted`);
    default:
      throw new Error(`${raw}: entry type ${entry.type} is not accepted (only files and symlinks)`);
  }
}

/** user/group names → ids from the root's own /etc/passwd and /etc/group */
export function idResolver(root: string): {
  uid(name: string, fallback: number): number;
  gid(name: string, fallback: number): number;
} {
  const table = (file: string): Map<string, number> => {
    try {
      return new Map(
        readFileSync(join(root, file), "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => l.split(":"))
          .map((f) => [f[0] ?? "", Number(f[2])]),
      );
    } catch {
      return new Map();
    }
  };
  const users = table("etc/passwd");
  const groups = table("etc/group");
  const look =
    (map: Map<string, number>, kind: string) =>
    (name: string, fallback: number): number => {
      if (name === "") return fallback;
      if (/^\d+$/.test(name)) return Number(name);
      const id = map.get(name);
      if (id === undefined || Number.isNaN(id))
        throw new ArchiveRejectedError(`${kind} ${name} does not exist on this host`);
      return id;
    };
  return { uid: look(users, "user"), gid: look(groups, "group") };
}

/**
 * Writes the validated entries under root. Everything is checked first (owners exist, every
 * directory on the way is safe and inside the root as the kernel resolves it, link targets stay
 * inside, nothing foreign or another stack's in the way); then every path is claimed in the state
 * (keyed by its real root-relative path, so two spellings cannot share a file) and written.
 */
export function installArchive(
  entries: ArchiveEntry[],
  sha: string,
  stack: string,
  root: string,
  state: AgentState,
  unitDir?: string,
  /** the absolute paths the original Houston's archive of this stack wrote (houston adopt) */
  takeover: ReadonlySet<string> = new Set(),
): void {
  const realRoot = realpathSync.native(root);
  const forbidden = unitDirectories(realRoot, unitDir);
  const ids = idResolver(realRoot);
  const problems: string[] = [];
  const newDirs = new Set<string>();
  const pending = new Map<string, string>();
  const placed: { e: ArchiveEntry; dir: string; name: string; key: string }[] = [];
  for (const e of entries) {
    try {
      const links: { link: string; target: string; pending: boolean }[] = [];
      const { real, missing } = resolveDirectory(realRoot, posix.dirname(e.path), pending, (link, target, p) =>
        links.push({ link, target, pending: p }),
      );
      for (const d of missing) newDirs.add(d);
      const name = posix.basename(e.path);
      const abs = join(real, name);
      const inUnits = forbidden.find((d) => isInside(d, abs));
      if (inUnits) throw new Error(`files in ${inUnits} are not accepted: units are Houston's to write, from the spec`);
      for (const l of links) {
        const why = foreignLink(realRoot, l, stack, state);
        if (why) throw new Error(why);
      }
      if (e.type === "symlink") pending.set(abs, e.linkTarget ?? "");
      placed.push({ e, dir: real, name, key: `/${relative(realRoot, abs)}` });
    } catch (err) {
      problems.push(`/${e.path}: ${errorText(err)}`);
    }
  }
  const files = placed.map(({ e, dir, name, key }) => {
    let uid = 0;
    let gid = 0;
    try {
      uid = ids.uid(e.uname, e.uid);
      gid = ids.gid(e.gname, e.gid);
    } catch (err) {
      problems.push(`/${e.path}: ${errorText(err)}`);
    }
    const abs = join(dir, name);
    const owner = state.fileOwner(key);
    const existing = lstatOrNull(abs);
    // the very path the original's archive of this stack named (key is the real path: no symlink on the way)
    const taken = !!existing && !owner && e.type === "file" && existing.isFile() && takeover.has(key);
    if (owner && owner.stack !== stack)
      problems.push(`${key} is owned by stack ${owner.stack}; refusing to take it over`);
    else if (existing && !owner && !taken)
      problems.push(`${key} exists and was not created by Houston; refusing to overwrite it`);
    if (existing?.isDirectory()) problems.push(`${key} is a directory`);
    if (e.type === "symlink") {
      const to = kernelResolveSafe(dir, e.linkTarget ?? "", pending);
      if (to === null || !isInside(realRoot, to))
        problems.push(`/${e.path}: symlink to ${e.linkTarget} resolves outside the root${to ? ` (${to})` : ""}`);
    }
    let original: OriginalFile | null = null;
    if (taken)
      try {
        original = readOriginal(abs);
      } catch (err) {
        problems.push(`${key}: what the original Houston wrote cannot be kept for a restore (${errorText(err)})`);
      }
    return { e, dir, name, key, uid, gid, taken, original };
  });
  if (problems.length)
    throw new ArchiveRejectedError(`archive ${sha} rejected, nothing written: ${problems.join("; ")}`);

  const dirs = [...newDirs].sort((a, b) => a.length - b.length);
  state.claimFiles(sha, stack, [
    ...dirs.map((d) => ({ path: `/${d}`, kind: "dir" as const })),
    ...files.map((f) => ({ path: f.key, kind: f.taken ? ("taken" as const) : ("file" as const) })),
  ]);
  for (const f of files) {
    if (f.original) state.keepOriginal(f.key, stack, f.original);
    else if (!takeover.has(f.key)) state.forgetOriginal(f.key); // the stack's for good: no way back
  }
  makeDirectories(realRoot, dirs);
  for (const { e, dir, name, uid, gid } of files) {
    if (e.type === "symlink") writeSymlinkSafely(dir, name, e.linkTarget ?? "");
    else writeFileSafely(dir, name, { data: e.data, mode: e.mode, uid, gid });
  }
  state.markArchiveInstalled(sha, stack);
}

/**
 * Why a write may not go through this symlink, or null when it may: only links Houston created
 * for the same stack are followed (an archive's own new links are refused earlier, in
 * parseArchive). Another stack's link would let one stack write where another chose, and a link
 * Houston did not make was put there by someone else; both are refused, whatever they point to.
 * Ownership is then recorded under the path the kernel writes (the caller's key), never the link's.
 */
function foreignLink(
  realRoot: string,
  l: { link: string; target: string; pending: boolean },
  stack: string,
  state: AgentState,
): string | null {
  if (l.pending) return null;
  const key = `/${relative(realRoot, l.link)}`;
  const owner = isInside(realRoot, l.link) ? state.fileOwner(key) : null;
  if (owner?.stack === stack) return null;
  return `the path goes through the symlink ${key} (-> ${l.target}), which ${owner ? `stack ${owner.stack} created, not stack ${stack}` : "Houston did not create"}; refusing to write through it`;
}

/**
 * Where systemd reads units and drop-ins from: an archive file there would shadow or override a
 * unit (a vendor's or another stack's) past every unit rule, so archives may not write there.
 */
function unitDirectories(realRoot: string, unitDir: string | undefined): string[] {
  const dirs = ["etc/systemd", "run/systemd", "usr/lib/systemd", "lib/systemd", "usr/local/lib/systemd"].map((d) =>
    join(realRoot, d),
  );
  if (unitDir) dirs.push(kernelResolve("/", unitDir));
  return dirs;
}

function kernelResolveSafe(from: string, target: string, pending: Map<string, string>): string | null {
  try {
    return kernelResolve(from, target, pending);
  } catch {
    return null;
  }
}

/** the most of a file of the original Houston kept for a restore */
const ORIGINAL_MAX_BYTES = 8 << 20;

/** A regular file's content, mode and owner, read without following a symlink. */
function readOriginal(abs: string): OriginalFile {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > ORIGINAL_MAX_BYTES) throw new Error(`${st.size} bytes, more than ${ORIGINAL_MAX_BYTES}`);
    return { data: readFileSync(fd), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes the files (and empty directories) this archive created and still owns, each only
 * through real, safe directories (see safe-fs.ts). A file taken over from the original Houston is
 * never deleted: while `takeover` (what adopt recorded for the stack: no deploy of it confirmed
 * yet) still names it, what the original wrote is put back and the file is forgotten; otherwise it
 * stays as it is and stays the stack's (state.leaveFile), so that a later deploy of the same stack
 * may write it again (after `remove`, say) and no other stack may. What cannot be removed or put
 * back safely is left in place, forgotten, and named in the error.
 */
export function removeArchive(
  sha: string,
  root: string,
  state: AgentState,
  takeover: ReadonlySet<string> = new Set(),
): void {
  const realRoot = realpathSync.native(root);
  const left: string[] = [];
  for (const f of state.filesOf(sha)) {
    const rel = f.path.replace(/^\/+/, "");
    const why =
      f.kind === "taken" ? putBack(realRoot, rel, f.path, state, takeover) : removeSafely(realRoot, rel, f.kind);
    if (why === STAYS) state.leaveFile(f.path);
    else {
      if (why) left.push(why);
      state.forgetFile(f.path);
    }
  }
  state.forgetArchive(sha);
  if (left.length) throw new ArchiveRejectedError(`archive ${sha}: left in place: ${left.join("; ")}`);
}

/** putBack's answer for a taken file left as the stack wrote it (its deploy was confirmed) */
const STAYS = Symbol("stays");

/**
 * A taken-over file at its removal: the original's content back while adopt still names it (null),
 * or STAYS; an error naming what could not be put back.
 */
function putBack(
  realRoot: string,
  rel: string,
  path: string,
  state: AgentState,
  takeover: ReadonlySet<string>,
): string | null | typeof STAYS {
  const original = takeover.has(path) ? state.originalOf(path) : null;
  state.forgetOriginal(path);
  if (!original) return STAYS; // the stack's deploy was confirmed (or nothing was kept): it stays
  const dir = join(realRoot, posix.dirname(rel));
  try {
    if (realpathSync.native(dir) !== dir || !isInside(realRoot, dir)) throw new Error(`${dir} is not a real directory`);
    writeFileSafely(dir, posix.basename(rel), original);
    return null;
  } catch (err) {
    return `${path}: what the original Houston wrote was not put back (${errorText(err)})`;
  }
}
