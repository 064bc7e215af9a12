import { describe, expect, it } from "vitest";
import {
  afterPass,
  allErrors,
  isConverging,
  stackErrors,
  stackPhase,
  type StackFacts,
  type StackPhase,
} from "../../agent/stack-phase.js";

const facts = (o: { pending?: string[]; failed?: string[]; refused?: string[] }): StackFacts => ({
  pending: new Set(o.pending ?? []),
  failed: new Map((o.failed ?? []).map((s) => [s, [`step of ${s} failed`]])),
  refused: new Map((o.refused ?? []).map((s) => [s, [`spec of ${s} refused`]])),
});

describe("stackPhase", () => {
  const cases: {
    title: string;
    facts: StackFacts;
    phase: StackPhase;
    converging: boolean;
    errors: string[];
  }[] = [
    { title: "nothing known of the stack: settled", facts: facts({}), phase: "settled", converging: false, errors: [] },
    {
      title: "steps still to do in the running pass: converging",
      facts: facts({ pending: ["s"] }),
      phase: "converging",
      converging: true,
      errors: [],
    },
    {
      title: "a step failed in the last pass: failed, still converging (a retry follows)",
      facts: facts({ failed: ["s"] }),
      phase: "failed",
      converging: true,
      errors: ["step of s failed"],
    },
    {
      title: "failed before and retried now: failed until a pass finishes without error",
      facts: facts({ pending: ["s"], failed: ["s"] }),
      phase: "failed",
      converging: true,
      errors: ["step of s failed"],
    },
    {
      title: "its spec was refused, the last good one is in force: refused, not converging",
      facts: facts({ refused: ["s"] }),
      phase: "refused",
      converging: false,
      errors: ["spec of s refused"],
    },
    {
      title: "refused spec while the last good one still has steps: converging, the refusal shown",
      facts: facts({ pending: ["s"], refused: ["s"] }),
      phase: "converging",
      converging: true,
      errors: ["spec of s refused"],
    },
    {
      title: "refused and a step failed: failed, the pass's errors shown",
      facts: facts({ failed: ["s"], refused: ["s"] }),
      phase: "failed",
      converging: true,
      errors: ["step of s failed"],
    },
    {
      title: "other stacks' facts do not touch it",
      facts: facts({ pending: ["a"], failed: ["b"], refused: ["c"] }),
      phase: "settled",
      converging: false,
      errors: [],
    },
  ];
  for (const c of cases)
    it(c.title, () => {
      const phase = stackPhase(c.facts, "s");
      expect(phase).toBe(c.phase);
      expect(isConverging(phase)).toBe(c.converging);
      expect(stackErrors(c.facts, "s")).toEqual(c.errors);
    });

  it("after a pass nothing is pending: what failed is failed, the rest settled (or refused)", () => {
    const after = afterPass(
      facts({ pending: ["a", "b", "c"], failed: ["a"], refused: ["c"] }),
      new Map([["b", ["x"]]]),
    );
    expect(["a", "b", "c"].map((s) => stackPhase(after, s))).toEqual(["settled", "failed", "refused"]);
  });

  it("all errors: a stack's pass errors take the place of its refusal", () => {
    expect([...allErrors(facts({ failed: ["a"], refused: ["a", "b"] }))]).toEqual([
      ["a", ["step of a failed"]],
      ["b", ["spec of b refused"]],
    ]);
  });
});
