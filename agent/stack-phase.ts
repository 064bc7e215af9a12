/**
 * Each stack's phase on this host, computed from what the passes found (pure). The agent keeps
 * the facts (stacks with steps still to do, the errors of the last finished pass, why a stack's
 * spec was refused); its reports, /status and the archive requests of fleet's file units read
 * the phase and the errors from here.
 *
 *   settled    — nothing left to do, the stack's spec (if any) was accepted
 *   converging — the running pass has steps of the stack still to do
 *   failed     — a step of the stack failed in the last finished pass (a retry follows)
 *   refused    — the spec in KV was refused; the last good one stays in force and is settled
 */
export type StackPhase = "settled" | "converging" | "failed" | "refused";

export interface StackFacts {
  /** stacks with steps still to do in the pass that is running */
  pending: ReadonlySet<string>;
  /** errors per stack of the last finished pass */
  failed: ReadonlyMap<string, string[]>;
  /** why a stack's spec in KV was refused (kept apart from pass errors: they come from the watch) */
  refused: ReadonlyMap<string, string[]>;
  /** the refused spec's generation and the problem, per stack (the report's `refused`, which the controller follows) */
  refusals?: ReadonlyMap<string, { generation: number | null; problem: string }>;
}

export const NO_FACTS: StackFacts = { pending: new Set(), failed: new Map(), refused: new Map() };

export function stackPhase(facts: StackFacts, stack: string): StackPhase {
  if (facts.failed.has(stack)) return "failed";
  if (facts.pending.has(stack)) return "converging";
  if (facts.refused.has(stack)) return "refused";
  return "settled";
}

/** what a report says in `converging`: the agent has work left for the stack (a failed one is retried) */
export function isConverging(phase: StackPhase): boolean {
  return phase === "converging" || phase === "failed";
}

/** The errors a report shows for a stack: its last pass's if it failed, else why its spec was refused. */
export function stackErrors(facts: StackFacts, stack: string): string[] {
  return facts.failed.get(stack) ?? facts.refused.get(stack) ?? [];
}

/** What a stack's report says was refused (its generation and why), if anything. */
export function stackRefusal(
  facts: StackFacts,
  stack: string,
): { generation: number | null; reason: string } | undefined {
  const r = facts.refusals?.get(stack);
  return r ? { generation: r.generation, reason: r.problem } : undefined;
}

/** Every stack with errors, as a report or /status shows them. */
export function allErrors(facts: StackFacts): Map<string, string[]> {
  return new Map([...facts.refused, ...facts.failed]);
}

/** After a pass: what is left to do is what failed (a spec change meanwhile triggers another pass). */
export function afterPass(facts: StackFacts, failed: Map<string, string[]>): StackFacts {
  return { ...facts, pending: new Set(), failed };
}
