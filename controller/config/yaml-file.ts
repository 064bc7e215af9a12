/**
 * Reading config files with errors that name the file and line; only from inside the config
 * directory (a symlink that leaves it is refused, naming the link and its target).
 */
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync, statSync, type Stats } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { LineCounter, parseDocument, isScalar, type Document, type Node } from "yaml";
import { ConfigError } from "../../shared/errors.js";

export interface YamlFile {
  file: string;
  data: unknown;
  /** line of the node at path (1-based), if known */
  lineOf(path: (string | number)[]): number | undefined;
  /** the scalar's text as written (e.g. `0644`), if it is a scalar */
  sourceOf(path: (string | number)[]): string | undefined;
  fail(path: (string | number)[], detail: string): never;
}

/** Reads a YAML file of the config directory `dir` (see readConfigText). */
export function readYamlFile(file: string, dir?: string): YamlFile {
  return parseYamlText(readConfigText(file, dir), file);
}

/**
 * A config file's text. With `dir`, the file must be inside the config directory as the kernel
 * resolves it: a config repo is often someone else's pull request, and a unit or files/*.yaml
 * that links to ~/.aws/credentials would otherwise be printed by `plan` and written to KV.
 */
export function readConfigText(file: string, dir?: string): string {
  if (dir !== undefined) assertInsideConfig(dir, file);
  try {
    const what = notAFile(statSync(file));
    if (what) throw new ConfigError(file, `is ${what}, not a file`);
    return readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === "ENOENT" ? "file not found" : `cannot read (${code ?? String(err)})`);
  }
}

/**
 * Whether a config file is there to read (absent: false). A symlink that leads nowhere or round in
 * a loop, on the way from `dir` or the file itself, and a folder on the way that is a file, are
 * errors naming that path: read as "no such file", a stack's files/*.yaml would be skipped (the
 * stack deployed without its files) or a unit looked up in the next folder instead.
 */
export function configFileExists(file: string, dir?: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new ConfigError(file, "a symlink loop (too many levels of symbolic links)");
    if (code !== "ENOENT" && code !== "ENOTDIR") throw new ConfigError(file, `cannot read (${code ?? String(err)})`);
  }
  const top = dir === undefined ? dirname(file) : resolve(dir);
  for (let cur = resolve(file); cur !== top && cur !== dirname(cur); cur = dirname(cur)) {
    let st: Stats;
    try {
      st = lstatSync(cur);
    } catch {
      continue; // not there: an absent folder or file, as it may be
    }
    if (st.isSymbolicLink()) {
      if (!existsSync(cur)) throw new ConfigError(cur, `a symlink to ${readlinkSync(cur)}, which does not exist`);
      st = statSync(cur);
    }
    if (cur !== resolve(file) && !st.isDirectory())
      throw new ConfigError(cur, `is ${notAFile(st) ?? "a file"}, not a directory (looking for ${file})`);
  }
  return false;
}

/** What a path that is not a regular file is (a fifo would block the read), or null for a file. */
function notAFile(st: Stats): string | null {
  if (st.isFile()) return null;
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a named pipe";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}

/**
 * Refuses `file` when a symlink on its way from `dir` (the file itself or a folder) leads outside
 * `dir`: the error names that link and its target. Links that stay inside are followed as usual.
 * What does not exist is left to the read, which says so.
 */
export function assertInsideConfig(dir: string, file: string): void {
  let realDir: string;
  try {
    realDir = realpathSync.native(dir);
  } catch {
    return;
  }
  const rel = relative(dir, file);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel))
    throw new ConfigError(file, `is not inside the config directory ${dir}`);
  let cur = dir;
  for (const part of rel.split(sep)) {
    cur = join(cur, part);
    let st: Stats;
    try {
      st = lstatSync(cur);
    } catch {
      return;
    }
    if (!st.isSymbolicLink()) continue;
    const target = readlinkSync(cur);
    let real: string;
    try {
      real = realpathSync.native(cur);
    } catch {
      real = resolve(dirname(cur), target); // dangling: where it points, as written
    }
    const inside = relative(realDir, real);
    if (inside.startsWith("..") || isAbsolute(inside))
      throw new ConfigError(
        cur,
        `a symlink to ${target}${real !== target ? ` (${real})` : ""}, outside the config directory ${dir}: refusing to read it (copy the file into the directory, or link only within it)`,
      );
  }
}

export function parseYamlText(text: string, file: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, {
    lineCounter,
    keepSourceTokens: true,
    prettyErrors: false,
    uniqueKeys: true,
  });
  const first = doc.errors[0];
  if (first) {
    const pos = lineCounter.linePos(first.pos[0]);
    throw new ConfigError(file, `invalid YAML: ${first.message.split("\n")[0]}`, pos.line);
  }
  const nodeAt = (path: (string | number)[]): Node | undefined => {
    const n = path.length === 0 ? doc.contents : doc.getIn(path, true);
    return n && typeof n === "object" && "range" in n ? (n as Node) : undefined;
  };
  const lineOf = (path: (string | number)[]): number | undefined => {
    const range = nodeAt(path)?.range;
    return range ? lineCounter.linePos(range[0]).line : undefined;
  };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // e.g. "Excessive alias count": an alias bomb; never a stack trace
    throw new ConfigError(file, `cannot read this YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    file,
    data,
    lineOf,
    sourceOf(path) {
      const n = nodeAt(path);
      return n && isScalar(n) && n.srcToken && "source" in n.srcToken ? String(n.srcToken.source) : undefined;
    },
    fail(path, detail) {
      const where = path.length ? `${path.join(".")}: ` : "";
      throw new ConfigError(file, `${where}${detail}`, lineOf(path));
    },
  };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
