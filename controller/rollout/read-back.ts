/**
 * What the controller reads back from KV before it acts on it or signs anything derived from it:
 * with a signing key, the live spec (its units are kept, removed, restored; its generation is
 * counted) and the history records (rollback redeploys their units; their generations are
 * counted) must verify against the controller's own public key. A live spec that does not is an
 * UnverifiedKvError naming the key and what is wrong, before anything is written; so is a history
 * record a rollback would redeploy. A history record that does not verify is not counted at all
 * (a warning names it). `--trust-kv-as-is` (ctx.trustKvAsIs) takes what KV holds as it is, with a
 * WARNING naming each unverified key accepted. Without a signing key nothing is verified (there is
 * nothing to verify against): KV is trusted, as the agents without --trust do.
 */
import { HoustonError } from "../../shared/errors.js";
import type { HistoryRecord, StackSpec } from "../../shared/spec.js";
import { listHistory, listVerifiedHistory } from "../../shared/stores/history.js";
import { readSpec, readVerifiedSpec } from "../../shared/stores/specs.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";

/** A record read back from KV failed verification against the controller's key; nothing was written (exit 1). */
export class UnverifiedKvError extends HoustonError {}

export const TRUST_FLAG = "--trust-kv-as-is";

type ReadBackContext = Pick<Context, "consul" | "kv" | "signer" | "trustKvAsIs">;

function refusal(ctx: ReadBackContext, key: string, problem: string): string {
  // the specs store words a spec's problem for an agent; here the controller is the verifier
  const what = problem.replace(/this agent/g, "this controller");
  return `${key} does not verify against this controller's signing key ${ctx.signer?.keyId ?? ""}: ${what}`;
}

function accepted(key: string, problem: string, out: Output): void {
  out.warn(`${TRUST_FLAG}: taking ${key} as it is although ${problem.replace(/this agent/g, "this controller")}`);
}

/**
 * The live spec and its ModifyIndex; with signing on, only one whose signature verifies (else
 * UnverifiedKvError, unless --trust-kv-as-is).
 */
export async function readLiveSpec(
  ctx: ReadBackContext,
  stack: string,
  out: Output,
): Promise<{ spec: StackSpec | null; modifyIndex: number }> {
  if (!ctx.signer) return readSpec(ctx.consul, ctx.kv, stack);
  // verified as the signer signs: for its prefix and cluster, and for the spec's own environment
  // (a rollout may change it: a rollback, or a deployment with another -e)
  const scope = { ...ctx.signer.scope, environment: null };
  const r = await readVerifiedSpec(ctx.consul, ctx.kv, stack, ctx.signer.trusted(), scope);
  if (r.problem !== null) {
    if (!ctx.trustKvAsIs)
      throw new UnverifiedKvError(
        `${refusal(ctx, r.key, r.problem)}; nothing was written. Someone other than this controller wrote it, or it was signed with another key: check it, then deploy with ${TRUST_FLAG} to take it as it is`,
      );
    accepted(r.key, r.problem, out);
  }
  return { spec: r.spec, modifyIndex: r.modifyIndex };
}

/**
 * The history records that count (for generations and rollbacks), oldest first. With signing on,
 * a record that does not verify is left out with a warning naming it (with --trust-kv-as-is it
 * counts, with a WARNING); `refused` are those left out.
 */
export async function readHistory(
  ctx: ReadBackContext,
  stack: string,
  /** null: say nothing (said already) */
  out: Output | null,
): Promise<{ records: HistoryRecord[]; refused: { key: string; error: string; record: HistoryRecord | null }[] }> {
  if (!ctx.signer) return { records: await listHistory(ctx.consul, ctx.kv, stack), refused: [] };
  const v = await listVerifiedHistory(ctx.consul, ctx.kv, stack, ctx.signer.trusted(), ctx.signer.scope.cluster);
  if (!ctx.trustKvAsIs) {
    for (const r of v.refused) out?.warn(`not counting ${r.error}`);
    return v;
  }
  const records = [...v.records];
  for (const r of v.refused) {
    if (r.record === null) out?.warn(`not counting ${r.error}`);
    else {
      if (out) accepted(r.key, r.error, out);
      records.push(r.record);
    }
  }
  return { records: records.sort((a, b) => a.generation - b.generation), refused: [] };
}

/** A history record a rollback would redeploy, refused when it did not verify (UnverifiedKvError). */
export function checkRollbackTarget(
  ctx: ReadBackContext,
  generation: number,
  refused: { key: string; error: string; record: HistoryRecord | null }[],
): void {
  const bad = refused.find((r) => r.record?.generation === generation);
  if (bad)
    throw new UnverifiedKvError(
      `not rolling back to generation ${generation}: ${bad.error}, and this controller (signing key ${ctx.signer?.keyId ?? ""}) redeploys only records it signed; nothing was written. Check it, then roll back with ${TRUST_FLAG} to take it as it is`,
    );
}
