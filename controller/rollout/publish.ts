/**
 * Writing stack specs into KV: with CAS on their ModifyIndex (a concurrent change is detected, not
 * overwritten) and, when a signing key is configured, with their signature in the same transaction.
 */
import type { Consul } from "../../shared/consul.js";
import { HoustonError } from "../../shared/errors.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { StackSpecSchema, decodeJson, type StackSpec } from "../../shared/spec.js";
import type { SpecSigner } from "../../shared/signing.js";

export class ConcurrentChangeError extends HoustonError {}

export async function readSpecAt(
  consul: Consul,
  kv: KvLayout,
  stack: string,
): Promise<{ spec: StackSpec | null; modifyIndex: number }> {
  const key = kv.spec(stack);
  const entry = await consul.kvGet(key);
  if (!entry) return { spec: null, modifyIndex: 0 };
  return { spec: decodeJson(StackSpecSchema, key, entry.value), modifyIndex: entry.modifyIndex };
}

/**
 * Writes the spec only if the key is still at `modifyIndex` (0: only if absent), with its signature
 * (or without a stale one) in the same transaction; returns the new ModifyIndex from that write.
 */
export async function writeSpec(
  consul: Consul,
  kv: KvLayout,
  spec: StackSpec,
  modifyIndex: number,
  signer: SpecSigner | null,
): Promise<number> {
  StackSpecSchema.parse(spec);
  const key = kv.spec(spec.stack);
  const bytes = Buffer.from(JSON.stringify(spec));
  const sigKey = kv.signature(spec.stack);
  const res = await consul.txn([
    { verb: "cas", key, value: bytes, index: modifyIndex },
    signer
      ? { verb: "set", key: sigKey, value: JSON.stringify(signer.sign(spec.stack, spec.generation, bytes)) }
      : { verb: "delete", key: sigKey },
  ]);
  if (!res.ok)
    throw new ConcurrentChangeError(
      `${key} changed while this deployment ran (expected ModifyIndex ${modifyIndex}); not overwriting it`,
    );
  return res.indexes[0] ?? modifyIndex;
}

export async function deleteSpec(consul: Consul, kv: KvLayout, stack: string, modifyIndex: number): Promise<void> {
  const res = await consul.txn([
    { verb: "delete-cas", key: kv.spec(stack), index: modifyIndex },
    { verb: "delete", key: kv.signature(stack) },
  ]);
  if (!res.ok) throw new ConcurrentChangeError(`${kv.spec(stack)} changed while removing it; not deleting`);
}
