/**
 * Signed specs: write access to KV alone must not mean root on every host. The controller signs
 * the exact bytes of each spec it writes (ed25519, node:crypto); the signature lives beside the
 * spec (stacks/<stack>/signature). Agents configured with trusted public keys apply only specs
 * whose signature verifies against one of them. The signed message binds the stack and the
 * generation as well as the bytes, and agents never go back to a lower generation, so an older
 * signed spec cannot be replayed.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { HoustonError, errorText } from "./errors.js";

export class SigningKeyError extends HoustonError {}

export const SpecSignatureSchema = z.object({
  schema: z.literal(1),
  algorithm: z.literal("ed25519"),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  stack: z.string(),
  generation: z.number().int().min(1),
  signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});
export type SpecSignature = z.infer<typeof SpecSignatureSchema>;

/** First 16 hex of the sha256 of the public key (SPKI DER): names a key in messages and KV. */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256")
    .update(pub.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
}

function message(stack: string, generation: number, specBytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`houston-spec-v1\n${stack}\n${generation}\n`), specBytes]);
}

export function generateSigningKeys(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

export class SpecSigner {
  readonly keyId: string;
  constructor(private readonly key: KeyObject) {
    if (key.asymmetricKeyType !== "ed25519")
      throw new SigningKeyError(`signing key is ${key.asymmetricKeyType ?? "not asymmetric"}, expected ed25519`);
    this.keyId = keyIdOf(key);
  }

  static fromFile(path: string): SpecSigner {
    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(path));
    } catch (err) {
      throw new SigningKeyError(`signing key ${path}: ${errorText(err)}`);
    }
    return new SpecSigner(key);
  }

  /** The public half, keyed by its ID: what the controller verifies what it reads back against. */
  trusted(): Map<string, KeyObject> {
    return new Map([[this.keyId, createPublicKey(this.key)]]);
  }

  /** ed25519 over a message another module domain-separates (shared/record-signing.ts). */
  signMessage(msg: Buffer): string {
    return sign(null, msg, this.key).toString("base64");
  }

  sign(stack: string, generation: number, specBytes: Buffer): SpecSignature {
    const signature = sign(null, message(stack, generation, specBytes), this.key).toString("base64");
    return { schema: 1, algorithm: "ed25519", keyId: this.keyId, stack, generation, signature };
  }
}

/**
 * Trusted public keys from files and directories (every *.pub inside; read again on each call,
 * so a key dropped into the directory is trusted without a restart: rotation).
 */
export class TrustStore {
  constructor(private readonly paths: string[]) {}

  get configured(): boolean {
    return this.paths.length > 0;
  }

  /** Loads every key now; throws naming the file when one is unreadable or not an ed25519 public key. */
  keys(): Map<string, KeyObject> {
    const out = new Map<string, KeyObject>();
    for (const p of this.paths) {
      const files = statSync(p).isDirectory()
        ? readdirSync(p)
            .filter((f) => f.endsWith(".pub"))
            .sort()
            .map((f) => join(p, f))
        : [p];
      for (const f of files) {
        let key: KeyObject;
        try {
          key = createPublicKey(readFileSync(f));
        } catch (err) {
          throw new SigningKeyError(`trusted key ${f}: ${errorText(err)}`);
        }
        if (key.asymmetricKeyType !== "ed25519")
          throw new SigningKeyError(`trusted key ${f} is ${key.asymmetricKeyType ?? "?"}, expected ed25519`);
        out.set(keyIdOf(key), key);
      }
    }
    return out;
  }
}

/** Why a spec must not be applied, or null when its signature verifies against a trusted key. */
export function signatureProblem(
  stack: string,
  generation: number,
  specBytes: Buffer,
  signature: SpecSignature | null,
  trusted: Map<string, KeyObject>,
): string | null {
  if (!signature) return "the spec is not signed and this agent trusts only signed specs";
  if (signature.stack !== stack || signature.generation !== generation) {
    return `the signature is for ${signature.stack} generation ${signature.generation}, not ${stack} generation ${generation}`;
  }
  const key = trusted.get(signature.keyId);
  if (!key) return `the spec is signed by key ${signature.keyId}, which this agent does not trust`;
  const ok = verify(null, message(stack, generation, specBytes), key, Buffer.from(signature.signature, "base64"));
  return ok ? null : `the signature by key ${signature.keyId} does not match the spec (tampered?)`;
}
