/**
 * Writing files that must not exist yet (`keygen`, `acl policies --out`), all or nothing: any of
 * them present (a file, a folder, a symlink even to nowhere) refuses the lot before anything is
 * written; each is created exclusively (O_EXCL: never through a symlink), and when one cannot be
 * written, those written before it are removed. Errors name the flag.
 */
import { lstatSync, unlinkSync, writeFileSync } from "node:fs";
import { ConfigError, errorText } from "../../shared/errors.js";

export interface NewFile {
  path: string;
  text: string;
  mode?: number;
}

/** The paths of `files` that exist in any form (lstat: a dangling symlink counts). */
export function presentPaths(files: readonly { path: string }[]): string[] {
  return files
    .filter((f) => {
      try {
        lstatSync(f.path);
        return true;
      } catch {
        return false;
      }
    })
    .map((f) => f.path);
}

/** Writes every file or none (see the header); `what` names them in the error. */
export function writeNewFiles(flag: string, what: string, files: readonly NewFile[]): void {
  const written: string[] = [];
  try {
    for (const f of files) {
      writeFileSync(f.path, f.text, { mode: f.mode ?? 0o644, flag: "wx" });
      written.push(f.path);
    }
  } catch (err) {
    for (const p of written) {
      try {
        unlinkSync(p);
      } catch {
        // already gone: nothing of ours is left there
      }
    }
    throw new ConfigError(flag, `cannot write ${what}: ${errorText(err)}; nothing was written`);
  }
}
