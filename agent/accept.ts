/**
 * Which specs read from KV the agent may act on, and taking them in. `acceptSpec` decides (pure):
 * valid against the schema, at the key of their own stack, and — when the agent trusts signing
 * keys — signed by one of them and not older than a generation it has already accepted (so an old
 * signed spec cannot be replayed). `intakeSpecs` and `intakePlacements` apply a watch answer to
 * the state database (SQLite): what is accepted replaces the cached documents, a refused or
 * unreadable one keeps its stack's last good one in force; a refused spec is reported as its
 * stack's error.
 */
import type { KeyObject } from "node:crypto";
import { errorText } from "../shared/errors.js";
import { SpecSignatureSchema, signatureProblem } from "../shared/signing.js";
import { StackSpecSchema, decodeJson, type StackSpec } from "../shared/spec.js";
import type { KvEntry } from "../shared/consul.js";
import type { KvLayout } from "../shared/kv-layout.js";
import { PlacementDocSchema, type PlacementDoc } from "../shared/schedule.js";
import type { AgentState } from "./state.js";

export interface SpecCandidate {
  stack: string;
  key: string;
  value: Buffer;
  /** the stack's signature entry, if any */
  signature: { key: string; value: Buffer } | null;
}

/** `generation`: the refused spec's, null when it could not be read */
export type Acceptance = { ok: true; spec: StackSpec } | { ok: false; reason: string; generation: number | null };

/** a stack whose spec in KV was refused (its last good one stays in force) */
export interface Refusal {
  stack: string;
  generation: number | null;
  reason: string;
}

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
    return { ok: false, reason: errorText(err), generation: null };
  }
  const refuse = (reason: string): Acceptance => ({ ok: false, reason, generation: spec.generation });
  if (spec.stack !== c.stack) return refuse(`spec at ${c.key} names stack ${spec.stack}`);
  if (trusted === null) return { ok: true, spec };
  if (trusted instanceof Error)
    return refuse(`not applying ${c.key}: the trusted keys cannot be read (${trusted.message})`);
  let problem: string | null;
  try {
    const sig = c.signature ? decodeJson(SpecSignatureSchema, c.signature.key, c.signature.value) : null;
    problem = signatureProblem(spec.stack, spec.generation, c.value, sig, trusted);
  } catch (err) {
    problem = errorText(err);
  }
  if (problem) return refuse(`not applying ${c.key} generation ${spec.generation}: ${problem}`);
  if (highest !== undefined && spec.generation < highest)
    return refuse(
      `not applying ${c.key}: generation ${spec.generation} is older than generation ${highest} already accepted (a replayed spec?)`,
    );
  return { ok: true, spec };
}

/**
 * Takes in a watch answer of stacks/: the specs accepted replace the cached ones (a refused spec
 * keeps its stack's last good one in force). Returns the refusals.
 */
export function intakeSpecs(
  entries: KvEntry[],
  kv: KvLayout,
  state: AgentState,
  trusted: Map<string, KeyObject> | Error | null,
): Refusal[] {
  const cached = new Map(state.specs().map((s) => [s.stack, s]));
  const signatures = new Map<string, KvEntry>();
  for (const e of entries) {
    const stack = kv.stackOfSignatureKey(e.key);
    if (stack) signatures.set(stack, e);
  }
  const highest = state.acceptedGenerations();
  const next: StackSpec[] = [];
  const refusals: Refusal[] = [];
  for (const e of entries) {
    const stack = kv.stackOfSpecKey(e.key);
    if (!stack) continue;
    const result = acceptSpec(
      { stack, key: e.key, value: e.value, signature: signatures.get(stack) ?? null },
      trusted,
      highest.get(stack),
    );
    if (result.ok) {
      next.push(result.spec);
      state.noteAccepted(stack, result.spec.generation);
    } else {
      // nothing applied from a refused spec; the last good one (if any) stays in force
      refusals.push({ stack, generation: result.generation, reason: result.reason });
      const old = cached.get(stack);
      if (old) next.push(old);
    }
  }
  state.replaceSpecs(next);
  return refusals;
}

/**
 * Says each refusal once (to the journal): a spec is taken in again on every change under
 * stacks/, and its refusal would be logged as often. Remembers only the refusals in force, so a
 * refusal that ends and comes back is said again.
 */
export class RefusalLog {
  private said = new Set<string>();

  /** the lines to log for these refusals (those in force now) */
  lines(refusals: Refusal[]): string[] {
    const now = new Map(refusals.map((r) => [JSON.stringify([r.stack, r.generation, r.reason]), r]));
    const lines = [...now].flatMap(([key, r]) =>
      this.said.has(key)
        ? []
        : [`refused ${r.generation === null ? "the spec" : `generation ${r.generation}`} of ${r.stack}: ${r.reason}`],
    );
    this.said = new Set(now.keys());
    return lines;
  }
}

/**
 * Takes in a watch answer of placements/ (the scheduler's): valid documents at their own stack's
 * key replace the cached ones; an unreadable one keeps the last good one. What a placement may
 * ask is bounded by the signed spec (agent/targeting.ts).
 */
export function intakePlacements(entries: KvEntry[], kv: KvLayout, state: AgentState, log: (m: string) => void): void {
  const docs: PlacementDoc[] = [];
  const cached = state.placements();
  for (const e of entries) {
    const stack = kv.stackOfPlacementKey(e.key);
    if (!stack) continue;
    try {
      const doc = decodeJson(PlacementDocSchema, e.key, e.value);
      if (doc.stack !== stack) throw new Error(`${e.key} is about stack ${doc.stack}`);
      docs.push(doc);
    } catch (err) {
      log(`ignoring placements: ${errorText(err)}`);
      const old = cached.get(stack);
      if (old) docs.push(old);
    }
  }
  state.replacePlacements(docs);
}
