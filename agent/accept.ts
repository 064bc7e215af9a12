/**
 * Which specs read from KV the agent may act on, and taking them in. `acceptSpec` decides (pure):
 * valid against the schema, at the key of their own stack, and — when the agent trusts signing
 * keys — signed by one of them for this agent's scope (its KV prefix, its cluster name and, when
 * it is configured with one, its environment; decoding and verifying are the specs store's:
 * shared/stores/specs.ts) and not older than a generation it has already accepted (so an old
 * signed spec cannot be replayed; at that same generation only the very spec it accepted, read
 * again), nor older than the stack's signed latest record (shared/stores/latest.ts: a fresh host
 * has no memory of its own). `removalOf` decides (pure) whether a stack whose spec vanished is
 * removed: with trusted keys, only on a signed tombstone newer than what runs; otherwise it keeps
 * running and is refused, saying why. `intakeSpecs` and `intakePlacements` apply a watch answer
 * to the state database (SQLite): what is accepted replaces the cached documents, a refused or
 * unreadable one keeps its stack's last good one in force; a refusal is reported as its stack's
 * error. `RefusalLog` says each refusal once.
 */
import type { KeyObject } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { StackSpec } from "../shared/spec.js";
import type { KvEntry } from "../shared/consul.js";
import type { KvLayout } from "../shared/kv-layout.js";
import type { PlacementDoc } from "../shared/schedule.js";
import type { AcceptScope } from "../shared/signing.js";
import { decodePlacements } from "../shared/stores/placements.js";
import { decodeSpec, specEntries, verifySpec, type SpecEntry } from "../shared/stores/specs.js";
import { latestEntries, verifyLatest, type LatestRecord } from "../shared/stores/latest.js";
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
 * `scope`: what signatures must be for (this agent's prefix, cluster, environment).
 * `highest`: the highest generation of this stack accepted before.
 * `latest`: the stack's latest record, when its signature verified (else null: it raises no floor).
 * `current`: the spec in force for the stack (the one accepted last), if any.
 */
export function acceptSpec(
  c: SpecCandidate,
  trusted: Map<string, KeyObject> | Error | null,
  scope: AcceptScope,
  highest: number | undefined,
  latest: LatestRecord | null = null,
  current?: StackSpec,
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
  const problem = verifySpec({ ...c, index: 0 }, spec, trusted, scope);
  if (problem) return refuse(`not applying ${c.key} generation ${spec.generation}: ${problem}`, problem);
  /** a replayed spec: refused as `not applying KEY: why` */
  const stale = (why: string): Acceptance => refuse(`not applying ${c.key}: ${why}`, why);
  if (highest !== undefined && spec.generation < highest)
    return stale(
      `generation ${spec.generation} is older than generation ${highest} already accepted (a replayed spec?)`,
    );
  // the same generation again is only the spec in force, read again: another spec must be newer
  if (highest !== undefined && spec.generation === highest && !sameSpec(spec, current))
    return stale(
      `generation ${spec.generation} was already accepted with other contents; a new spec needs a greater generation`,
    );
  if (latest?.state === "removed" && spec.generation <= latest.generation)
    return stale(
      `the stack was removed at generation ${latest.generation} (signed), and generation ${spec.generation} is not newer (a replayed spec?)`,
    );
  if (latest?.state === "live" && spec.generation < latest.generation)
    return stale(
      `generation ${spec.generation} is older than generation ${latest.generation}, the stack's latest signed generation (a replayed spec?)`,
    );
  return { ok: true, spec };
}

function sameSpec(a: StackSpec, b: StackSpec | undefined): boolean {
  return b !== undefined && isDeepStrictEqual(a, b);
}

/** What becomes of a stack whose spec vanished from KV: removed (at a generation, when signed), or kept and why. */
export type Removal = { remove: true; generation: number | null } | { remove: false; reason: string };

/**
 * Whether a stack the agent runs (`running`: its generation, the highest accepted for it) and
 * whose spec vanished is removed: without trusted keys, yes (as the controller deleted it); with
 * them, only on the stack's latest record in state removed, signed for this agent's scope, at a
 * generation above `running` (a tombstone cannot be replayed over a later deployment).
 */
export function removalOf(
  stack: string,
  running: number,
  latest: { key: string; value: Buffer } | undefined,
  trusted: Map<string, KeyObject> | Error | null,
  scope: AcceptScope,
): Removal {
  if (trusted === null) return { remove: true, generation: null };
  const keep = (why: string): Removal => ({
    remove: false,
    reason: `the spec of ${stack} vanished from KV ${why}: generation ${running} keeps running`,
  });
  if (trusted instanceof Error) return keep(`but the trusted keys cannot be read (${trusted.message})`);
  if (!latest) return keep("without a signed removal (no tombstone)");
  const v = verifyLatest(stack, latest, trusted, scope);
  if (!v.ok) return keep(`and its removal is not valid (${v.problem})`);
  if (v.record.state !== "removed")
    return keep(`but its latest record says generation ${v.record.generation} is live, not removed`);
  if (v.record.generation <= running)
    return keep(
      `and its removal is for generation ${v.record.generation}, not newer than generation ${running} (a replayed removal?)`,
    );
  return { remove: true, generation: v.record.generation };
}

/**
 * Takes in a watch answer of stacks/: the specs accepted replace the cached ones (a refused spec
 * keeps its stack's last good one in force; so does a vanished one without a valid tombstone).
 * Returns the refusals.
 */
export function intakeSpecs(
  entries: KvEntry[],
  kv: KvLayout,
  state: AgentState,
  trusted: Map<string, KeyObject> | Error | null,
  scope: AcceptScope,
): Refusal[] {
  const cached = new Map(state.specs().map((s) => [s.stack, s]));
  const highest = state.acceptedGenerations();
  const latest = latestEntries(entries, kv);
  /** a stack's latest record when it verifies (only then does it raise the floor) */
  const signedLatest = (stack: string): LatestRecord | null => {
    const e = latest.get(stack);
    if (!e || !(trusted instanceof Map)) return null;
    const v = verifyLatest(stack, e, trusted, scope);
    return v.ok ? v.record : null;
  };
  const next: StackSpec[] = [];
  const refusals: Refusal[] = [];
  const present = new Set<string>();
  for (const e of specEntries(entries, kv)) {
    present.add(e.stack);
    const result = acceptSpec(e, trusted, scope, highest.get(e.stack), signedLatest(e.stack), cached.get(e.stack));
    if (result.ok) next.push(result.spec);
    else {
      // nothing applied from a refused spec; the last good one (if any) stays in force
      refusals.push({ stack: e.stack, generation: result.generation, reason: result.reason, problem: result.problem });
      const old = cached.get(e.stack);
      if (old) next.push(old);
    }
  }
  for (const [stack, old] of cached) {
    if (present.has(stack)) continue;
    const running = Math.max(old.generation, highest.get(stack) ?? 0);
    const removal = removalOf(stack, running, latest.get(stack), trusted, scope);
    if (!removal.remove) {
      refusals.push({ stack, generation: null, reason: removal.reason, problem: removal.reason });
      next.push(old);
    } else if (removal.generation !== null) state.noteAccepted(stack, removal.generation);
  }
  state.replaceSpecs(next);
  // noted after the specs are cached: the spec in force is never older than the generation noted
  for (const s of next) state.noteAccepted(s.stack, s.generation);
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
