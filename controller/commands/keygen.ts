/**
 * `houston keygen`: an ed25519 key pair for signing specs. The private key is created exclusively
 * (never overwriting an existing file) with mode 0600.
 */
import { existsSync, writeFileSync } from "node:fs";
import { ConfigError, errorText } from "../../shared/errors.js";
import { generateSigningKeys } from "../../shared/signing.js";

export function writeSigningKeys(prefix: string): { keyId: string; files: [string, string] } {
  if (prefix === "" || /[\0\n]/.test(prefix)) throw new ConfigError("--out", "expected a path prefix");
  const keys = generateSigningKeys();
  const files: [string, string] = [`${prefix}.key`, `${prefix}.pub`];
  const present = files.filter((f) => existsSync(f));
  if (present.length)
    throw new ConfigError(
      "--out",
      `${present.join(" and ")} already exist${present.length === 1 ? "s" : ""}; existing keys are never overwritten`,
    );
  try {
    writeFileSync(files[0], keys.privatePem, { mode: 0o600, flag: "wx" });
    writeFileSync(files[1], keys.publicPem, { mode: 0o644, flag: "wx" });
  } catch (err) {
    throw new ConfigError(
      "--out",
      `cannot write the key pair: ${errorText(err)} (existing keys are never overwritten)`,
    );
  }
  return { keyId: keys.keyId, files };
}
