/**
 * cloud-init style `write_files` lists (files/global.yaml, files/standalone/NAME.yaml,
 * files/service/NAME.yaml): path, content, permissions, owner, group, encoding, environment.
 */
import { existsSync } from "node:fs";
import { join, posix } from "node:path";
import { isRecord, readYamlFile, type YamlFile } from "./yaml-file.js";
import { substitute } from "./substitute.js";

export interface FileEntry {
  path: string;
  content: Buffer;
  mode: number;
  owner: string;
  group: string;
}

export type FilesKind = "global" | "standalone" | "service";

export function filesPath(dir: string, kind: FilesKind, name: string): string {
  return kind === "global" ? join(dir, "files", "global.yaml") : join(dir, "files", kind, `${name}.yaml`);
}

/** Entries for this environment, with variables substituted; [] when the file does not exist. */
export function loadFiles(file: string, environment: string, vars: Record<string, string>): FileEntry[] {
  if (!existsSync(file)) return [];
  const y: YamlFile = readYamlFile(file);
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
      if (!["path", "content", "permissions", "owner", "group", "encoding", "environment"].includes(k)) y.fail(at(k), "unknown field");
    }
    if (raw.environment !== undefined && raw.environment !== null) {
      if (typeof raw.environment !== "string") y.fail(at("environment"), "must be an environment name");
      if (raw.environment !== environment) return;
    }
    const path = raw.path;
    if (typeof path !== "string" || !path.startsWith("/")) y.fail(at("path"), "path must be an absolute path");
    const norm = posix.normalize(path);
    if (norm !== path || path.split("/").includes("..") || path.endsWith("/")) y.fail(at("path"), `path ${path} is not normalised (no '..', '//' or trailing '/')`);
    if (seen.has(path)) y.fail(at("path"), `path ${path} is also written by entry ${seen.get(path)}`);
    seen.set(path, i);

    const contentRaw = raw.content ?? "";
    if (typeof contentRaw !== "string") y.fail(at("content"), "content must be a string");
    let content: Buffer;
    const enc = raw.encoding;
    if (enc === undefined || enc === null) content = Buffer.from(substitute(contentRaw, vars), "utf8");
    else if (enc === "b64" || enc === "base64") {
      if (!/^[A-Za-z0-9+/=\s]*$/.test(contentRaw)) y.fail(at("content"), "encoding b64 but content is not base64");
      content = Buffer.from(contentRaw, "base64");
    } else y.fail(at("encoding"), `unsupported encoding ${JSON.stringify(enc)} (b64 or base64)`);

    let owner = "root";
    let group = "root";
    if (raw.owner !== undefined && raw.owner !== null) {
      if (typeof raw.owner !== "string") y.fail(at("owner"), "owner must be a user name (or user:group)");
      [owner, group] = raw.owner.includes(":") ? (raw.owner.split(":", 2) as [string, string]) : [raw.owner, raw.owner === "root" ? "root" : raw.owner];
    }
    if (raw.group !== undefined && raw.group !== null) {
      if (typeof raw.group !== "string") y.fail(at("group"), "group must be a group name");
      group = raw.group;
    }
    out.push({ path, content, mode: parseMode(raw.permissions, y.sourceOf(at("permissions")), (d) => y.fail(at("permissions"), d)), owner, group });
  });
  return out;
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
