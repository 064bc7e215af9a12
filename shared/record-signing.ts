/**
 * Signed records other than specs (e.g. history/<stack>/<generation>): the controller signs the
 * exact bytes it writes at a KV key, and verifies them with its own public key before it acts on
 * them (controller/rollout/read-back.ts). The signed message binds the KV key (prefix, stack and
 * generation included) and the cluster name (the signer's `--cluster`, as a spec's does: a record
 * copied from another cluster's Consul under the same prefix does not verify), and is
 * domain-separated from a spec's, so neither signature passes for the other and a record copied to
 * another key does not verify. Without a cluster name the message is the first format's (records
 * written before the cluster was bound still verify there).
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
  /** the cluster it was signed for (absent: none); for naming a mismatch, verification uses the verifier's own */
  cluster: z.string().optional(),
  signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});
export type RecordSignature = z.infer<typeof RecordSignatureSchema>;

function message(key: string, cluster: string, bytes: Buffer): Buffer {
  const head =
    cluster === "" ? `houston-record-v1\n${key}\n` : `houston-record-v2\n${JSON.stringify([cluster, key])}\n`;
  return Buffer.concat([Buffer.from(head), bytes]);
}

export function signRecord(signer: SpecSigner, key: string, bytes: Buffer): RecordSignature {
  const { cluster } = signer.scope;
  return {
    schema: 1,
    algorithm: "ed25519",
    keyId: signer.keyId,
    key,
    ...(cluster === "" ? {} : { cluster }),
    signature: signer.signMessage(message(key, cluster, bytes)),
  };
}

/** What is wrong with the record at `key` under these trusted keys for a verifier in `cluster`, or null when its signature verifies. */
export function recordSignatureProblem(
  key: string,
  bytes: Buffer,
  signature: RecordSignature | null,
  trusted: Map<string, KeyObject>,
  cluster: string,
): string | null {
  if (!signature) return "it is not signed";
  if (signature.key !== key) return `its signature is for ${signature.key}`;
  if ((signature.cluster ?? "") !== cluster)
    return `its signature is for cluster ${JSON.stringify(signature.cluster ?? "")}, not ${JSON.stringify(cluster)}`;
  const pub = trusted.get(signature.keyId);
  if (!pub)
    return `it is signed by key ${signature.keyId}, not by this controller's key ${[...trusted.keys()].join(", ")}`;
  const ok = verify(null, message(key, cluster, bytes), pub, Buffer.from(signature.signature, "base64"));
  return ok ? null : `its signature by key ${signature.keyId} does not match it (tampered?)`;
}
