/**
 * Which specs read from KV the agent may act on, and taking them in. `acceptSpec` decides (pure):
 * valid against the schema, at the key of their own stack, and — when the agent trusts signing
 * keys — signed by one of them (decoding and verifying are the specs store's:
 * shared/stores/specs.ts) and not older than a generation it has already accepted (so an old
 * signed spec cannot be replayed). `intakeSpecs` and `intakePlacements` apply a watch answer to
 * the state database (SQLite): what is accepted replaces the cached documents, a refused or
 * unreadable one keeps its stack's last good one in force; a refused spec is reported as its
 * stack's error. `RefusalLog` says each refusal once.
 */
import type { KeyObject } from "node:crypto";
import type { StackSpec } from "../shared/spec.js";
import type { KvEntry } from "../shared/consul.js";
import type { KvLayout } from "../shared/kv-layout.js";
import type { PlacementDoc } from "../shared/schedule.js";
import { decodePlacements } from "../shared/stores/placements.js";
import { decodeSpec, specEntries, verifySpec, type SpecEntry } from "../shared/stores/specs.js";
import type { AgentState } from "./state.js";

/** a spec's entry with its signature's (shared/stores/specs.ts); its ModifyIndex plays no part here */
export type SpecCandidate = Omit<SpecEntry, "index">;

/** `generation`: the refused spec's, null when it could not be read */
/** `reason`: for the journal and the report's errors; `problem`: the same without the key (the controller quotes it) */
export type Acceptance =
  { ok: true; spec: StackSpec } | { ok: false; reason: string; problem: string; generation: number | null };

/** a stack whose spec in KV was refused (its last good one stays in force) */
export interface Refusal {
  stack: string;
  generation: number | null;
  reason: string;
  problem: string;
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
  // unreadable, or naming another stack than its key's
  const decoded = decodeSpec({ ...c, index: 0 });
  if (!decoded.ok) return { ok: false, reason: decoded.error, problem: decoded.error, generation: null };
  const spec = decoded.value;
  const refuse = (reason: string, problem: string): Acceptance => ({
    ok: false,
    reason,
    problem,
    generation: spec.generation,
  });
  if (trusted === null) return { ok: true, spec };
  if (trusted instanceof Error) {
    const problem = `the trusted keys cannot be read (${trusted.message})`;
    return refuse(`not applying ${c.key}: ${problem}`, problem);
  }
  const problem = verifySpec({ ...c, index: 0 }, spec, trusted);
  if (problem) return refuse(`not applying ${c.key} generation ${spec.generation}: ${problem}`, problem);
  if (highest !== undefined && spec.generation < highest) {
    const replay = `generation ${spec.generation} is older than generation ${highest} already accepted (a replayed spec?)`;
    return refuse(`not applying ${c.key}: ${replay}`, replay);
  }
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
  const highest = state.acceptedGenerations();
  const next: StackSpec[] = [];
  const refusals: Refusal[] = [];
  for (const e of specEntries(entries, kv)) {
    const result = acceptSpec(e, trusted, highest.get(e.stack));
    if (result.ok) {
      next.push(result.spec);
      state.noteAccepted(e.stack, result.spec.generation);
    } else {
      // nothing applied from a refused spec; the last good one (if any) stays in force
      refusals.push({ stack: e.stack, generation: result.generation, reason: result.reason, problem: result.problem });
      const old = cached.get(e.stack);
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
  lines(refusals: Pick<Refusal, "stack" | "generation" | "reason">[]): string[] {
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
  for (const [stack, p] of decodePlacements(entries, kv)) {
    if (p.ok) {
      docs.push(p.value);
      continue;
    }
    log(`ignoring placements: ${p.error}`);
    const old = cached.get(stack);
    if (old) docs.push(old);
  }
  state.replacePlacements(docs);
}
