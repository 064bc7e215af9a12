/**
 * Signed records other than specs (e.g. history/<stack>/<generation>): the controller signs the
 * exact bytes it writes at a KV key, and verifies them with its own public key before it acts on
 * them (controller/rollout/read-back.ts). The signed message binds the KV key (prefix, stack and
 * generation included) and is domain-separated from a spec's, so neither signature passes for the
 * other and a record copied to another key does not verify.
 */
import { verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import type { SpecSigner } from "./signing.js";

export const RecordSignatureSchema = z.object({
  schema: z.literal(1),
  algorithm: z.literal("ed25519"),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  /** the KV key of the record signed */
  key: z.string(),
  signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});
export type RecordSignature = z.infer<typeof RecordSignatureSchema>;

function message(key: string, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`houston-record-v1\n${key}\n`), bytes]);
}

export function signRecord(signer: SpecSigner, key: string, bytes: Buffer): RecordSignature {
  return {
    schema: 1,
    algorithm: "ed25519",
    keyId: signer.keyId,
    key,
    signature: signer.signMessage(message(key, bytes)),
  };
}

/** What is wrong with the record at `key` under these trusted keys, or null when its signature verifies. */
export function recordSignatureProblem(
  key: string,
  bytes: Buffer,
  signature: RecordSignature | null,
  trusted: Map<string, KeyObject>,
): string | null {
  if (!signature) return "it is not signed";
  if (signature.key !== key) return `its signature is for ${signature.key}`;
  const pub = trusted.get(signature.keyId);
  if (!pub)
    return `it is signed by key ${signature.keyId}, not by this controller's key ${[...trusted.keys()].join(", ")}`;
  const ok = verify(null, message(key, bytes), pub, Buffer.from(signature.signature, "base64"));
  return ok ? null : `its signature by key ${signature.keyId} does not match it (tampered?)`;
}
