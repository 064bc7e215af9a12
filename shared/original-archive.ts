/**
 * The original Houston 0.3.0's file archives: it kept each as base64 of a tar in Consul KV under
 * `houston/<STACK>-file-deploy@<HASH>.service` (its file unit's name; files.py), and its file unit
 * extracted it at `/`. `houston adopt` reads the paths it names, so that the next deploy of that
 * stack may replace exactly those files on the hosts (shared/stores/adopted.ts).
 */
import { posix } from "node:path";
import type { ReadEntry } from "tar";
import { ARCHIVE_COMPONENT } from "./unit-name.js";

/** the original's KV prefix for archives (files.py CONSUL_PREFIX; its CLI has no flag for another) */
export const ORIGINAL_ARCHIVE_PREFIX = "houston/";

/** The original's file unit of a stack, or null: `STACK-file-deploy@HASH.service`. */
export function originalFileUnitStack(name: string): string | null {
  const m = new RegExp(`^(.+)-${ARCHIVE_COMPONENT}@[^@/]+\\.service$`).exec(name);
  return m?.[1] ?? null;
}

// control characters in names would make the record and the agents' messages lie
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The absolute paths of the regular files in the original's archive (its KV value: base64 of a
 * tar), sorted; names that would escape `/` or carry control characters are left out (its file
 * unit's tar would not have written them there). Throws when the value is not such an archive.
 */
export async function originalArchivePaths(value: Buffer): Promise<string[]> {
  const text = value.toString("latin1").trim();
  if (!/^[A-Za-z0-9+/=\s]*$/.test(text)) throw new Error("not base64 (the original keeps base64 of a tar)");
  const tar = Buffer.from(text, "base64");
  const paths = new Set<string>();
  const { Parser } = await import("tar");
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({ strict: true });
    parser.on("entry", (entry: ReadEntry) => {
      const raw = entry.path;
      const rel = posix.normalize(raw.replace(/^\/+/, ""));
      const file = entry.type === "File" || entry.type === "OldFile" || entry.type === "ContiguousFile";
      if (file && !CONTROL.test(raw) && !raw.split("/").includes("..") && !rel.startsWith("..") && rel !== ".")
        paths.add(`/${rel}`);
      entry.resume();
    });
    parser.on("error", (err: unknown) => reject(new Error(`not a valid tar: ${String(err)}`)));
    parser.on("end", () => resolve());
    parser.end(tar);
  });
  return [...paths].sort();
}
