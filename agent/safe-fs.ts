/**
 * The agent's only way to write or delete files as root. Two rules make a path safe to act on
 * (systemd-tmpfiles' "unsafe path transitions", OpenSSH's StrictModes):
 *  - every directory on the way, from "/" down, is owned by root and not writable by group or
 *    others (a root-owned sticky directory such as /tmp aside); otherwise nobody but root could
 *    have swapped a component for a symlink between our check and our write;
 *  - every existing component is resolved by the kernel (realpath.native), so a chain of links
 *    ("s1 -> ..", "s2 -> s1/..") cannot carry a write outside the root.
 * Files are created O_CREAT|O_EXCL|O_NOFOLLOW under a random temp name, given owner and mode
 * through the open descriptor (fchown/fchmod), then renamed over the final name.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { dirname, isAbsolute, join, posix, relative } from "node:path";
import { HoustonError } from "../shared/errors.js";

export class UnsafePathError extends HoustonError {}

const MAX_LINKS = 40; // the kernel's own limit (ELOOP)

export function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

export function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** Why a directory is not safe to write through, or null when it is. */
export function unsafeDirectory(path: string, st: Stats): string | null {
  if (!st.isDirectory()) return `${path} is not a directory`;
  if (st.uid !== 0) return `directory ${path} is owned by uid ${st.uid}, not root`;
  const writable = (st.mode & 0o022) !== 0;
  const sticky = (st.mode & 0o1000) !== 0;
  if (writable && !sticky)
    return `directory ${path} is writable by ${st.mode & 0o020 ? "its group" : "others"} (mode ${(st.mode & 0o7777).toString(8)})`;
  return null;
}

/** Checks "/" and every directory down to `realDir` (a kernel-resolved path). */
export function assertSafeChain(realDir: string): void {
  let cur = "/";
  const parts = realDir.split("/").filter(Boolean);
  for (let i = 0; ; i++) {
    const st = lstatSync(cur);
    if (st.isSymbolicLink()) throw new UnsafePathError(`${cur} became a symlink`);
    const why = unsafeDirectory(cur, st);
    if (why) throw new UnsafePathError(why);
    const next = parts[i];
    if (next === undefined) return;
    cur = join(cur, next);
  }
}

/** Told of every symlink a resolution follows: where it is (its real parent joined with its name), its target, and whether it is only about to be created (`pending`). */
export type LinkVisitor = (link: string, target: string, pending: boolean) => void;

/**
 * Resolves `target` as the kernel would, starting in the real directory `from`; components that
 * do not exist yet are taken as they are. `pending` holds symlinks about to be created
 * (absolute path → target), so links within one archive resolve like links already on disk.
 */
export function kernelResolve(
  from: string,
  target: string,
  pending: Map<string, string> = new Map(),
  onLink?: LinkVisitor,
  depth = 0,
): string {
  if (depth > MAX_LINKS) throw new UnsafePathError(`too many levels of symbolic links resolving ${target}`);
  let cur = isAbsolute(target) ? "/" : from;
  for (const comp of target.split("/")) {
    if (comp === "" || comp === ".") continue;
    if (comp === "..") {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, comp);
    const planned = pending.get(next);
    if (planned !== undefined) {
      onLink?.(next, planned, true);
      cur = kernelResolve(cur, planned, pending, onLink, depth + 1);
      continue;
    }
    const st = lstatOrNull(next);
    if (st?.isSymbolicLink()) {
      const to = readlinkSync(next);
      onLink?.(next, to, false);
      cur = kernelResolve(cur, to, pending, onLink, depth + 1);
    } else cur = next;
  }
  return cur;
}

/**
 * The real directory a root-relative directory path lands in, checked: inside the root, every
 * existing directory safe. Directories that do not exist yet are listed (root-relative, top
 * first) for the caller to create with `makeDirectories`.
 */
export function resolveDirectory(
  realRoot: string,
  relDir: string,
  pending?: Map<string, string>,
  onLink?: LinkVisitor,
): { real: string; missing: string[] } {
  const real = kernelResolve(realRoot, relDir === "." ? "" : relDir, pending, onLink);
  if (!isInside(realRoot, real)) throw new UnsafePathError(`/${relDir} leads outside the root (to ${real})`);
  const missing: string[] = [];
  let existing = real;
  while (lstatOrNull(existing) === null) {
    missing.unshift(relative(realRoot, existing));
    existing = dirname(existing);
  }
  const st = lstatSync(existing);
  if (!st.isDirectory()) throw new UnsafePathError(`${existing} is in the way (not a directory)`);
  assertSafeChain(realpathSync.native(existing));
  return { real, missing };
}

/** Creates directories (root-relative, top first) as root with mode 0755, each checked at the time. */
export function makeDirectories(realRoot: string, dirs: string[]): void {
  for (const d of dirs) {
    const abs = join(realRoot, d);
    assertSafeChain(realpathSync.native(dirname(abs)));
    try {
      mkdirSync(abs, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const st = lstatSync(abs);
      const why = st.isSymbolicLink() ? `${abs} appeared as a symlink` : unsafeDirectory(abs, st);
      if (why) throw new UnsafePathError(why);
    }
  }
}

function tempName(dir: string, base: string): string {
  return join(dir, `.${base}.houston-tmp-${randomBytes(6).toString("hex")}`);
}

export interface FileContent {
  data: Buffer | string;
  mode: number;
  uid: number;
  gid: number;
}

/**
 * Writes `name` in the real directory `dir` atomically: the chain is checked at write time, the
 * temp file is created exclusively (never through a link), owner and mode are set on the open
 * descriptor, and the rename replaces a link at the final name rather than following it.
 */
export function writeFileSafely(dir: string, name: string, content: FileContent): void {
  assertSafeChain(dir);
  const tmp = tempName(dir, name);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const buf = typeof content.data === "string" ? Buffer.from(content.data) : content.data;
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    fchownSync(fd, content.uid, content.gid);
    fchmodSync(fd, content.mode);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, join(dir, name));
}

/** Creates (or replaces) the symlink `name` → `target` in the real directory `dir`. */
export function writeSymlinkSafely(dir: string, name: string, target: string): void {
  assertSafeChain(dir);
  const tmp = tempName(dir, name);
  symlinkSync(target, tmp);
  renameSync(tmp, join(dir, name));
}

/**
 * Deletes a root-relative path that Houston recorded as its own, only when every directory on the
 * way is still a real, safe directory inside the root (a parent swapped for a link is refused).
 * Returns why it was left in place, or null when it is gone.
 */
export function removeSafely(realRoot: string, rel: string, kind: "file" | "dir"): string | null {
  const abs = join(realRoot, rel);
  const parent = dirname(abs);
  let realParent: string;
  try {
    realParent = realpathSync.native(parent);
  } catch {
    return null; // the parent is gone, and with it the path
  }
  if (realParent !== parent || !isInside(realRoot, realParent))
    return `${posix.join("/", rel)}: ${parent} now resolves to ${realParent}; not deleting through it`;
  try {
    assertSafeChain(realParent);
  } catch (err) {
    return `${posix.join("/", rel)}: ${(err as Error).message}; not deleting it`;
  }
  try {
    if (kind === "dir") rmdirSync(abs);
    else unlinkSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") return null; // still used: left, silently
    if (code !== "ENOENT") return `${posix.join("/", rel)}: ${(err as Error).message}`;
  }
  return null;
}
