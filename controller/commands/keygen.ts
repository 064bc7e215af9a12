/**
 * `houston keygen`: an ed25519 key pair for signing specs. Both files are created exclusively
 * (never overwriting, nor writing through a symlink), the private key with mode 0600; if either
 * cannot be written, neither is left behind.
 */
import { ConfigError } from "../../shared/errors.js";
import { generateSigningKeys } from "../../shared/signing.js";
import { presentPaths, writeNewFiles } from "./new-files.js";

export function writeSigningKeys(prefix: string): { keyId: string; files: [string, string] } {
  if (prefix === "" || /[\0\n]/.test(prefix)) throw new ConfigError("--out", "expected a path prefix");
  // `--out keys/` or `--out .` would make hidden files named .key / ..key: a folder, not a prefix
  if (/(^|\/)(\.{0,2})$/.test(prefix))
    throw new ConfigError(
      "--out",
      `${prefix} names a directory, not a file prefix; give one such as ${prefix.replace(/\/+$/, "")}/houston-signing (writes its .key and .pub)`,
    );
  const files: [string, string] = [`${prefix}.key`, `${prefix}.pub`];
  const present = presentPaths(files.map((path) => ({ path })));
  if (present.length)
    throw new ConfigError(
      "--out",
      `${present.join(" and ")} already exist${present.length === 1 ? "s" : ""}; existing keys are never overwritten`,
    );
  const keys = generateSigningKeys();
  writeNewFiles("--out", "the key pair", [
    { path: files[0], text: keys.privatePem, mode: 0o600 },
    { path: files[1], text: keys.publicPem, mode: 0o644 },
  ]);
  return { keyId: keys.keyId, files };
}
