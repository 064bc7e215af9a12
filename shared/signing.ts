/**
 * Signed specs: write access to KV alone must not mean root on every host. The controller signs
 * the exact bytes of each spec it writes (ed25519, node:crypto); the signature lives beside the
 * spec (stacks/<stack>/signature). Agents configured with trusted public keys apply only specs
 * whose signature verifies against one of them. The signed message (houston-signed-v2) binds,
 * besides the bytes, what they are (a spec, or a stack's latest record: shared/stores/latest.ts),
 * the stack, the generation, the environment, the KV prefix and the cluster name: a spec signed
 * for staging, or for another prefix or cluster, does not verify on an agent of prod. Agents never
 * go back to a lower generation, so an older signed spec cannot be replayed. Signatures of the
 * first format (houston-spec-v1, stack and generation only) are refused, saying so.
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

/** What a signature is of: a stack's spec, or its latest record (live or removed). */
export type SignedKind = "spec" | "latest";

/** Where a signature holds: the KV prefix (as KvLayout writes it, ending in '/') and the cluster name ("" none). */
export interface SigningScope {
  prefix: string;
  cluster: string;
}

/** What an agent accepts: its prefix and cluster, and its environment (null: any environment). */
export interface AcceptScope extends SigningScope {
  environment: string | null;
}

/** What is signed besides the bytes. */
export interface SignedSubject {
  kind: SignedKind;
  stack: string;
  generation: number;
  environment: string;
}

/** A cluster name: letters, digits, '.', '_', '-' ("" for none). */
export const CLUSTER_RE = /^[A-Za-z0-9_.-]{0,63}$/;

/** The signature record (schema 2): the scope it claims is for naming a mismatch; verification uses the verifier's own. */
export const SpecSignatureSchema = z.object({
  schema: z.literal(2),
  algorithm: z.literal("ed25519"),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  kind: z.enum(["spec", "latest"]),
  prefix: z.string(),
  cluster: z.string(),
  environment: z.string(),
  stack: z.string(),
  generation: z.number().int().min(1),
  signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});
export type SpecSignature = z.infer<typeof SpecSignatureSchema>;

/** A signature of the first format (stack and generation only): read only to refuse it by name. */
const LegacySignatureSchema = z.object({ schema: z.literal(1) }).passthrough();

/** Either format; signatureProblem refuses the first. */
export const AnySignatureSchema = z.union([SpecSignatureSchema, LegacySignatureSchema]);
export type AnySignature = z.infer<typeof AnySignatureSchema>;

/** First 16 hex of the sha256 of the public key (SPKI DER): names a key in messages and KV. */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256")
    .update(pub.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);
}

/** The signed message: a JSON header (unambiguous whatever the names hold), a newline, the bytes. */
function message(scope: SigningScope, s: SignedSubject, bytes: Buffer): Buffer {
  const head = JSON.stringify([s.kind, scope.prefix, scope.cluster, s.environment, s.stack, s.generation]);
  return Buffer.concat([Buffer.from(`houston-signed-v2\n${head}\n`), bytes]);
}

export function generateSigningKeys(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/** Signs for one scope (the controller's KV prefix and cluster name). */
export class SpecSigner {
  readonly keyId: string;
  constructor(
    private readonly key: KeyObject,
    readonly scope: SigningScope,
  ) {
    if (key.asymmetricKeyType !== "ed25519")
      throw new SigningKeyError(`signing key is ${key.asymmetricKeyType ?? "not asymmetric"}, expected ed25519`);
    this.keyId = keyIdOf(key);
  }

  static fromFile(path: string, scope: SigningScope): SpecSigner {
    let pem: Buffer;
    try {
      pem = readFileSync(path);
    } catch (err) {
      throw new SigningKeyError(`signing key ${path}: ${errorText(err)}`);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      // OpenSSL's own words ("error:1E08010C:DECODER routines::unsupported") only as the detail
      const what = pem.includes("PUBLIC KEY-----") ? "a public key, not the private one" : "not a PEM private key";
      throw new SigningKeyError(
        `signing key ${path}: ${what} (houston keygen writes one as PREFIX.key) [${errorText(err)}]`,
      );
    }
    return new SpecSigner(key, scope);
  }

  /** The public half, keyed by its ID: what the controller verifies what it reads back against. */
  trusted(): Map<string, KeyObject> {
    return new Map([[this.keyId, createPublicKey(this.key)]]);
  }

  /** ed25519 over a message another module domain-separates (shared/record-signing.ts). */
  signMessage(msg: Buffer): string {
    return sign(null, msg, this.key).toString("base64");
  }

  sign(subject: SignedSubject, bytes: Buffer): SpecSignature {
    const signature = this.signMessage(message(this.scope, subject, bytes));
    const { kind, stack, generation, environment } = subject;
    const { prefix, cluster } = this.scope;
    return {
      schema: 2,
      algorithm: "ed25519",
      keyId: this.keyId,
      kind,
      prefix,
      cluster,
      environment,
      stack,
      generation,
      signature,
    };
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

/**
 * Why signed bytes must not be acted on by a verifier in `scope`, or null when the signature
 * verifies against a trusted key. A mismatch of what the signature claims (kind, stack,
 * generation, environment, prefix, cluster) is named; the message verified is built from the
 * subject and the verifier's own scope, so a record that lies about its scope does not verify.
 */
export function signatureProblem(
  subject: SignedSubject,
  bytes: Buffer,
  signature: AnySignature | null,
  trusted: Map<string, KeyObject>,
  scope: AcceptScope,
): string | null {
  const what = subject.kind === "spec" ? "the spec" : "the latest record";
  if (!signature) return `${what} is not signed and this agent trusts only signed specs`;
  if (signature.schema !== 2)
    return `${what} is signed in the first format (houston-spec-v1), which binds neither environment, KV prefix nor cluster: redeploy the stack with this version's controller`;
  if (scope.environment !== null && subject.environment !== scope.environment)
    return `${what} is for environment ${JSON.stringify(subject.environment)}; this agent is in environment ${JSON.stringify(scope.environment)}`;
  const claimed: [string, string | number, string | number][] = [
    ["kind", signature.kind, subject.kind],
    ["stack", signature.stack, subject.stack],
    ["generation", signature.generation, subject.generation],
    ["environment", signature.environment, subject.environment],
  ];
  for (const [name, got, want] of claimed)
    if (got !== want) return `the signature is for ${name} ${JSON.stringify(got)}, not ${JSON.stringify(want)}`;
  if (signature.prefix !== scope.prefix)
    return `the signature is for KV prefix ${JSON.stringify(signature.prefix)}; this agent reads ${JSON.stringify(scope.prefix)} (copied from another prefix?)`;
  if (signature.cluster !== scope.cluster)
    return `the signature is for cluster ${JSON.stringify(signature.cluster)}; this agent is in cluster ${JSON.stringify(scope.cluster)}`;
  const key = trusted.get(signature.keyId);
  if (!key) return `${what} is signed by key ${signature.keyId}, which this agent does not trust`;
  const ok = verify(null, message(scope, subject, bytes), key, Buffer.from(signature.signature, "base64"));
  return ok ? null : `the signature by key ${signature.keyId} does not match ${what} (tampered?)`;
}
