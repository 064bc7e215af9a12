/**
 * Which specs read from KV the agent may act on (pure): valid against the schema, at the key of
 * their own stack, and — when the agent trusts signing keys — signed by one of them and not older
 * than a generation it has already accepted (so an old signed spec cannot be replayed). A refused
 * spec is reported as its stack's error; the last good spec stays in force.
 */
import type { KeyObject } from "node:crypto";
import { errorText } from "../shared/errors.js";
import { SpecSignatureSchema, signatureProblem } from "../shared/signing.js";
import { StackSpecSchema, decodeJson, type StackSpec } from "../shared/spec.js";

export interface SpecCandidate {
  stack: string;
  key: string;
  value: Buffer;
  /** the stack's signature entry, if any */
  signature: { key: string; value: Buffer } | null;
}

export type Acceptance = { ok: true; spec: StackSpec } | { ok: false; reason: string };

/**
 * `trusted`: null when the agent trusts no keys (unsigned specs are applied); otherwise the keys,
 * or the error that loading them gave (then nothing is accepted: fail closed).
 * `highest`: the highest generation of this stack accepted before.
 */
export function acceptSpec(
  c: SpecCandidate,
  trusted: Map<string, KeyObject> | Error | null,
  highest: number | undefined,
): Acceptance {
  let spec: StackSpec;
  try {
    spec = decodeJson(StackSpecSchema, c.key, c.value);
  } catch (err) {
    return { ok: false, reason: errorText(err) };
  }
  if (spec.stack !== c.stack) return { ok: false, reason: `spec at ${c.key} names stack ${spec.stack}` };
  if (trusted === null) return { ok: true, spec };
  if (trusted instanceof Error)
    return { ok: false, reason: `not applying ${c.key}: the trusted keys cannot be read (${trusted.message})` };
  let problem: string | null;
  try {
    const sig = c.signature ? decodeJson(SpecSignatureSchema, c.signature.key, c.signature.value) : null;
    problem = signatureProblem(spec.stack, spec.generation, c.value, sig, trusted);
  } catch (err) {
    problem = errorText(err);
  }
  if (problem) return { ok: false, reason: `not applying ${c.key} generation ${spec.generation}: ${problem}` };
  if (highest !== undefined && spec.generation < highest) {
    return {
      ok: false,
      reason: `not applying ${c.key}: generation ${spec.generation} is older than generation ${highest} already accepted (a replayed spec?)`,
    };
  }
  return { ok: true, spec };
}
