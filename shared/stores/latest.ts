/**
 * The store of each stack's latest record: stacks/<stack>/latest, written by the controller in the
 * same transaction as every spec it writes (state "live") and as the deletion of the spec when it
 * removes the stack (state "removed": the tombstone); signed (kind "latest", over the state) when
 * signing is on, deleted with the spec when it is off. Agents with --trust take from it whether a
 * spec that vanished was removed by the signing key's holder, and the lowest generation they may
 * accept even with no memory of their own (a re-imaged host): a replayed older spec is refused.
 * Under stacks/, so the agents' watch of specs sees it and their ACL needs nothing more.
 */
import type { KeyObject } from "node:crypto";
import { z } from "zod";
import type { KvEntry, TxnOp } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { AnySignatureSchema, signatureProblem, type AcceptScope, type SpecSigner } from "../signing.js";
import { decodeEntry } from "./document.js";

export const LatestRecordSchema = z.object({
  schema: z.literal(1),
  stack: z.string(),
  generation: z.number().int().min(1),
  environment: z.string(),
  state: z.enum(["live", "removed"]),
  signature: AnySignatureSchema.nullable(),
});
export type LatestRecord = z.infer<typeof LatestRecordSchema>;

export interface LatestFacts {
  stack: string;
  generation: number;
  environment: string;
  state: LatestRecord["state"];
}

const subject = (r: LatestFacts) =>
  ({ kind: "latest", stack: r.stack, generation: r.generation, environment: r.environment }) as const;
const signedBytes = (r: LatestFacts) => Buffer.from(r.state);

/** The transaction operation that goes with a spec's write or deletion: the record, signed; without a signer, its deletion. */
export function latestOp(kv: KvLayout, facts: LatestFacts, signer: SpecSigner | null): TxnOp {
  const key = kv.latest(facts.stack);
  if (!signer) return { verb: "delete", key };
  const { stack, generation, environment, state } = facts;
  const signature = signer.sign(subject(facts), signedBytes(facts));
  const record: LatestRecord = { schema: 1, stack, generation, environment, state, signature };
  return { verb: "set", key, value: JSON.stringify(LatestRecordSchema.parse(record)) };
}

/** The latest records of a listing of stacks/ (a watch answer), by the stack of their key. */
export function latestEntries(entries: KvEntry[], kv: KvLayout): Map<string, KvEntry> {
  const out = new Map<string, KvEntry>();
  for (const e of entries) {
    const stack = kv.stackOfLatestKey(e.key);
    if (stack) out.set(stack, e);
  }
  return out;
}

/**
 * The record at `stack`'s key when it is readable, names that stack and its signature verifies
 * for a reader in `scope`; otherwise what is wrong (naming the key).
 */
export function verifyLatest(
  stack: string,
  e: Pick<KvEntry, "key" | "value">,
  trusted: Map<string, KeyObject>,
  scope: AcceptScope,
): { ok: true; record: LatestRecord } | { ok: false; problem: string } {
  const d = decodeEntry(LatestRecordSchema, e);
  if (!d.ok) return { ok: false, problem: d.error };
  const r = d.value;
  if (r.stack !== stack) return { ok: false, problem: `${e.key} names stack ${r.stack}` };
  const problem = signatureProblem(subject(r), signedBytes(r), r.signature, trusted, scope);
  return problem ? { ok: false, problem: `${e.key}: ${problem}` } : { ok: true, record: r };
}
