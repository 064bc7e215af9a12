/**
 * The store of stack specs: stacks/<stack>/spec with its signature at stacks/<stack>/signature.
 * Lists and decodes them (a spec must name the stack of its key), verifies a signature against
 * trusted keys, and CAS-writes a spec together with its signature (or without a stale one) and
 * the stack's latest record (shared/stores/latest.ts); deleting a spec leaves a signed tombstone
 * when signing is on (without it, the latest record goes with the spec).
 * An unreadable spec is returned as Unreadable; the caller says what it means (status reports it,
 * placement ignores it, archive pruning keeps everything).
 */
import type { KeyObject } from "node:crypto";
import type { Consul, KvEntry } from "../consul.js";
import { ConcurrentChangeError, errorText } from "../errors.js";
import type { KvLayout } from "../kv-layout.js";
import { AnySignatureSchema, signatureProblem, type AcceptScope, type SpecSigner } from "../signing.js";
import { StackSpecSchema, decodeJson, type StackSpec } from "../spec.js";
import { decodeEntry, documentOf, unreadable, type Decoded, type Unreadable } from "./document.js";
import { latestOp } from "./latest.js";

/** A spec's entry, with its stack (from the key) and its signature's entry, if any. */
export interface SpecEntry {
  stack: string;
  key: string;
  value: Buffer;
  index: number;
  signature: { key: string; value: Buffer } | null;
}

export interface SpecList {
  specs: StackSpec[];
  unreadable: Unreadable[];
}

/** The spec entries of a listing of stacks/ (a watch answer or kvList), in key order. */
export function specEntries(entries: KvEntry[], kv: KvLayout): SpecEntry[] {
  const signatures = new Map<string, KvEntry>();
  for (const e of entries) {
    const stack = kv.stackOfSignatureKey(e.key);
    if (stack) signatures.set(stack, e);
  }
  return entries.flatMap((e) => {
    const stack = kv.stackOfSpecKey(e.key);
    if (!stack) return [];
    const sig = signatures.get(stack);
    const signature = sig ? { key: sig.key, value: sig.value } : null;
    return [{ stack, key: e.key, value: e.value, index: e.modifyIndex, signature }];
  });
}

/** Decodes one spec; a spec that names another stack than its key's is unreadable. */
export function decodeSpec(e: Pick<SpecEntry, "stack" | "key" | "value" | "index">): Decoded<StackSpec> {
  const d = decodeEntry(StackSpecSchema, { key: e.key, value: e.value, modifyIndex: e.index });
  return d.ok && d.value.stack !== e.stack ? unreadable(e.key, e.index, `names stack ${d.value.stack}`) : d;
}

/**
 * Why a decoded spec must not be applied under these trusted keys by a reader in `scope` (its KV
 * prefix, cluster and environment), or null when its signature verifies. The signature entry is
 * decoded here too (an unreadable one is the problem).
 */
export function verifySpec(
  e: SpecEntry,
  spec: StackSpec,
  trusted: Map<string, KeyObject>,
  scope: AcceptScope,
): string | null {
  try {
    const sig = e.signature ? decodeJson(AnySignatureSchema, e.signature.key, e.signature.value) : null;
    const subject = {
      kind: "spec" as const,
      stack: spec.stack,
      generation: spec.generation,
      environment: spec.environment,
    };
    return signatureProblem(subject, e.value, sig, trusted, scope);
  } catch (err) {
    return errorText(err);
  }
}

/** Every spec of a listing of stacks/, decoded; `only` keeps one stack. */
export function decodeSpecs(entries: KvEntry[], kv: KvLayout, only?: string): SpecList {
  const out: SpecList = { specs: [], unreadable: [] };
  for (const e of specEntries(entries, kv)) {
    if (only !== undefined && e.stack !== only) continue;
    const d = decodeSpec(e);
    if (d.ok) out.specs.push(d.value);
    else out.unreadable.push({ key: d.key, error: d.error });
  }
  return out;
}

/** Every live spec in KV (unreadable ones apart). */
export async function listSpecs(consul: Consul, kv: KvLayout, only?: string): Promise<SpecList> {
  return decodeSpecs(await consul.kvList(kv.stacks), kv, only);
}

/** One stack's live spec (null) and its ModifyIndex (0) when absent; an unreadable one throws InvalidKvDataError. */
export async function readSpec(
  consul: Consul,
  kv: KvLayout,
  stack: string,
): Promise<{ spec: StackSpec | null; modifyIndex: number }> {
  const entry = await consul.kvGet(kv.spec(stack));
  const modifyIndex = entry?.modifyIndex ?? 0;
  const spec = entry && documentOf(decodeSpec({ stack, key: entry.key, value: entry.value, index: modifyIndex }));
  return { spec, modifyIndex };
}

/**
 * One stack's live spec as readSpec reads it, with what is wrong with its signature under these
 * trusted keys for `scope` (null: it verifies, or there is no spec). Spec and signature are read
 * together.
 */
export async function readVerifiedSpec(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  trusted: Map<string, KeyObject>,
  scope: AcceptScope,
): Promise<{ spec: StackSpec | null; modifyIndex: number; key: string; problem: string | null }> {
  const key = kv.spec(stack);
  const entry = specEntries(await consul.kvList(`${kv.stacks}${stack}/`), kv).find((e) => e.stack === stack);
  if (!entry) return { spec: null, modifyIndex: 0, key, problem: null };
  const spec = documentOf(decodeSpec(entry));
  return { spec, modifyIndex: entry.index, key, problem: verifySpec(entry, spec, trusted, scope) };
}

/**
 * Writes the spec only if its key is still at `modifyIndex` (0: only if absent), with its
 * signature (or without a stale one) in the same transaction; returns the new ModifyIndex.
 * Throws ConcurrentChangeError when the key changed meanwhile (nothing written).
 */
export async function writeSpec(
  consul: Consul,
  kv: KvLayout,
  spec: StackSpec,
  { modifyIndex, signer }: { modifyIndex: number; signer: SpecSigner | null },
): Promise<number> {
  const bytes = Buffer.from(JSON.stringify(StackSpecSchema.parse(spec)));
  const key = kv.spec(spec.stack);
  const sigKey = kv.signature(spec.stack);
  const subject = {
    kind: "spec" as const,
    stack: spec.stack,
    generation: spec.generation,
    environment: spec.environment,
  };
  const signature = signer && JSON.stringify(signer.sign(subject, bytes));
  const res = await consul.txn([
    { verb: "cas", key, value: bytes, index: modifyIndex },
    signature ? { verb: "set", key: sigKey, value: signature } : { verb: "delete", key: sigKey },
    latestOp(
      kv,
      { stack: spec.stack, generation: spec.generation, environment: spec.environment, state: "live" },
      signer,
    ),
  ]);
  if (res.ok) return res.indexes[0] ?? modifyIndex;
  throw new ConcurrentChangeError(
    `${key} changed while this deployment ran (expected ModifyIndex ${modifyIndex}); not overwriting it`,
  );
}

/**
 * Deletes the spec (if still at `modifyIndex`) and its signature; ConcurrentChangeError otherwise.
 * With `removal` and a signer, a signed tombstone (the latest record, state removed, at
 * `removal.generation`: above the live one) is written in the same transaction, without which
 * agents with --trust keep running the stack; without a signer the latest record goes too.
 */
export async function deleteSpec(
  consul: Consul,
  kv: KvLayout,
  stack: string,
  modifyIndex: number,
  removal?: { generation: number; environment: string; signer: SpecSigner | null },
): Promise<void> {
  const res = await consul.txn([
    { verb: "delete-cas", key: kv.spec(stack), index: modifyIndex },
    { verb: "delete", key: kv.signature(stack) },
    removal
      ? latestOp(
          kv,
          { stack, generation: removal.generation, environment: removal.environment, state: "removed" },
          removal.signer,
        )
      : { verb: "delete", key: kv.latest(stack) },
  ]);
  if (!res.ok) throw new ConcurrentChangeError(`${kv.spec(stack)} changed while removing it; not deleting`);
}
