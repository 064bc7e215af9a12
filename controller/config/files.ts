/**
 * cloud-init style `write_files` lists (files/global.yaml, files/standalone/NAME.yaml,
 * files/service/NAME.yaml): path, content, permissions, owner, group, encoding, environment.
 */
import { join, posix } from "node:path";
import { configFileExists, isRecord, readYamlFile, type YamlFile } from "./yaml-file.js";
import type { FileEntry } from "../plan/inputs.js";
import { substitute } from "../plan/substitute.js";

/** user/group names as useradd accepts them, or a number */
const ACCOUNT_RE = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10})$/;
/** where systemd reads units and drop-ins (agents refuse archive files there too) */
const SYSTEMD_DIRS = [
  "/etc/systemd/",
  "/run/systemd/",
  "/usr/lib/systemd/",
  "/lib/systemd/",
  "/usr/local/lib/systemd/",
];

export type { FileEntry } from "../plan/inputs.js";

export type FilesKind = "global" | "standalone" | "service";

export function filesPath(dir: string, kind: FilesKind, name: string): string {
  return kind === "global" ? join(dir, "files", "global.yaml") : join(dir, "files", kind, `${name}.yaml`);
}

/**
 * Entries for this environment, with variables substituted; [] when the file does not exist.
 * With `dir` (the config directory), a file that links outside it is refused.
 */
export function loadFiles(
  file: string,
  environment: string,
  vars: Record<string, string>,
  known?: ReadonlySet<string>,
  dir?: string,
): FileEntry[] {
  if (!configFileExists(file, dir)) return [];
  const y: YamlFile = readYamlFile(file, dir);
  let list: unknown = y.data;
  let base: (string | number)[] = [];
  if (isRecord(list) && "write_files" in list) {
    list = list.write_files;
    base = ["write_files"];
  }
  if (list === null || list === undefined) return [];
  if (!Array.isArray(list)) y.fail(base, "expected a list of write_files entries (path, content, permissions…)");
  const entries: unknown[] = list;
  const out: FileEntry[] = [];
  const seen = new Map<string, number>();
  entries.forEach((raw, i) => {
    const at = (k?: string): (string | number)[] => (k ? [...base, i, k] : [...base, i]);
    if (!isRecord(raw)) y.fail(at(), "each entry must be a mapping with at least path and content");
    for (const k of Object.keys(raw)) {
      if (!["path", "content", "permissions", "owner", "group", "encoding", "environment"].includes(k))
        y.fail(at(k), "unknown field");
    }
    if (raw.environment !== undefined && raw.environment !== null) {
      if (typeof raw.environment !== "string") y.fail(at("environment"), "must be an environment name");
      if (known && !known.has(raw.environment))
        y.fail(
          at("environment"),
          `environment ${JSON.stringify(raw.environment)} is not defined in the manifest (known: ${[...known].join(", ")})`,
        );
      if (raw.environment !== environment) return;
    }
    const path = raw.path;
    // no path at all: the entry's own line
    if (typeof path !== "string" || !path.startsWith("/"))
      y.fail(path === undefined ? at() : at("path"), "path must be an absolute path");
    if (/[\u0000-\u001f\u007f]/.test(path))
      y.fail(at("path"), `path ${JSON.stringify(path)} contains a control character`);
    const norm = posix.normalize(path);
    const unitDir = SYSTEMD_DIRS.find((d) => path.startsWith(d));
    if (unitDir)
      y.fail(
        at("path"),
        `path ${path} is under ${unitDir}, where systemd reads units and drop-ins; units belong in units/ (agents refuse such files)`,
      );
    if (norm !== path || path.split("/").includes("..") || path.endsWith("/"))
      y.fail(at("path"), `path ${path} is not normalised (no '..', '//' or trailing '/')`);
    // what the host's filesystem takes (NAME_MAX, PATH_MAX): the agent would fail to write it
    const long = path.split("/").find((part) => Buffer.byteLength(part) > 255);
    if (long !== undefined)
      y.fail(at("path"), `path ${path.slice(0, 80)}… has a name of ${Buffer.byteLength(long)} bytes (at most 255)`);
    if (Buffer.byteLength(path) > 4095)
      y.fail(at("path"), `path ${path.slice(0, 80)}… is ${Buffer.byteLength(path)} bytes long (at most 4095)`);
    if (seen.has(path)) y.fail(at("path"), `path ${path} is also written by entry ${seen.get(path)}`);
    for (const [other, j] of seen) {
      if (path.startsWith(`${other}/`))
        y.fail(at("path"), `path ${path} needs ${other} to be a directory, but entry ${j} writes it as a file`);
      if (other.startsWith(`${path}/`))
        y.fail(at("path"), `path ${path} is a directory of ${other} (entry ${j}), not a file`);
    }
    seen.set(path, i);

    const contentRaw = raw.content ?? "";
    if (typeof contentRaw !== "string") y.fail(at("content"), "content must be a string");
    let content: Buffer;
    const enc = raw.encoding;
    if (enc === undefined || enc === null) content = Buffer.from(substitute(contentRaw, vars), "utf8");
    else if (enc === "b64" || enc === "base64") {
      const decoded = decodeBase64(contentRaw);
      if (decoded === "alphabet")
        y.fail(at("content"), "encoding b64 but content is not base64 (padding only at the end)");
      if (decoded === "stray")
        y.fail(at("content"), "encoding b64 but content does not decode to what it says (stray bits or padding)");
      content = decoded;
    } else y.fail(at("encoding"), `unsupported encoding ${JSON.stringify(enc)} (b64 or base64)`);

    let owner = "root";
    let group = "root";
    if (raw.owner !== undefined && raw.owner !== null) {
      if (typeof raw.owner !== "string") y.fail(at("owner"), "owner must be a user name (or user:group)");
      const parts = raw.owner.split(":");
      if (parts.length > 2)
        y.fail(at("owner"), `owner ${JSON.stringify(raw.owner)} has more than one ':' (user or user:group)`);
      owner = parts[0] ?? "";
      group = parts[1] ?? (owner === "root" ? "root" : owner);
      if (!ACCOUNT_RE.test(owner))
        y.fail(at("owner"), `owner ${JSON.stringify(owner)} is not a valid user name or number`);
      if (!ACCOUNT_RE.test(group))
        y.fail(at("owner"), `group ${JSON.stringify(group)} is not a valid group name or number`);
    }
    if (raw.group !== undefined && raw.group !== null) {
      if (typeof raw.group !== "string" || !ACCOUNT_RE.test(raw.group))
        y.fail(at("group"), `group ${JSON.stringify(raw.group)} is not a valid group name or number`);
      group = raw.group;
    }
    const mode = parseMode(raw.permissions, y.sourceOf(at("permissions")), (d) => y.fail(at("permissions"), d));
    if (mode & 0o6000)
      y.fail(at("permissions"), `permissions ${mode.toString(8)} set setuid/setgid, which agents refuse`);
    out.push({ path, content, mode, owner, group });
  });
  return out;
}

/**
 * Strict base64 (whitespace allowed, padding optional but only at the end): the bytes, or what is
 * wrong. "stray" is text that Buffer would decode, though not to bytes that encode back to it (bits
 * left over in the last group, or a lone character). Linear and cheap on a 20 MB file: one search
 * for a character outside the alphabet, and only the last group encoded again.
 */
export function decodeBase64(text: string): Buffer | "alphabet" | "stray" {
  const compact = /\s/.test(text) ? text.replace(/\s+/g, "") : text;
  if (/[^A-Za-z0-9+/=]/.test(compact)) return "alphabet";
  let end = compact.length;
  while (end > 0 && compact.charCodeAt(end - 1) === 61 /* = */) end--;
  if (compact.length - end > 2 || (end > 0 && compact.lastIndexOf("=", end - 1) !== -1)) return "alphabet";
  if (compact.length % 4 === 1) return "alphabet";
  const bytes = Buffer.from(compact.slice(0, end), "base64");
  if (Math.ceil((bytes.length * 4) / 3) !== end) return "stray";
  const tail = bytes.length % 3;
  if (tail) {
    const again = bytes
      .subarray(bytes.length - tail)
      .toString("base64")
      .replace(/=+$/, "");
    if (compact.slice(end - again.length, end) !== again) return "stray";
  }
  return bytes;
}

/**
 * cloud-init permissions: `0644` (YAML 1.1 read it as octal; YAML 1.2 as 644 — both mean 0o644),
 * `"0644"`, `"644"`, `0o644`. The text as written decides, so no reading is ambiguous.
 */
export function parseMode(value: unknown, source: string | undefined, fail: (detail: string) => never): number {
  if (value === undefined || value === null) return 0o644;
  let text = source ?? String(value);
  text = text.trim().replace(/^['"]|['"]$/g, "");
  if (/^0o[0-7]{1,4}$/i.test(text)) return parseInt(text.slice(2), 8);
  if (/^[0-7]{1,4}$/.test(text)) return parseInt(text, 8);
  return fail(`permissions ${JSON.stringify(text)} is not an octal mode like 0644`);
}
