/**
 * A batch's placement (follow.ts awaitPlacement): a refusal counts from a previewed host or the
 * scheduler role's holder only (any agent token may write its own node's report of any stack), and
 * a placement that takes longer than a moment is said, naming who places; so is a removal
 * (removed.ts waitRemoved).
 */
import { describe, expect, it } from "vitest";
import type { Output } from "../../controller/output.js";
import { awaitPlacement } from "../../controller/rollout/follow.js";
import { waitRemoved } from "../../controller/rollout/removed.js";
import type { Batch } from "../../controller/rollout/rollout-plan.js";
import type { Scheduler } from "../../controller/scheduler/scheduler.js";
import type { StatusReport, UnitSpec } from "../../shared/spec.js";
import { quiet } from "../helpers/output.js";
import { statusReport } from "../helpers/specs.js";

const unit: UnitSpec = {
  name: "web@2.service",
  stack: "web",
  component: null,
  group: null,
  version: "2",
  role: "service",
  text: "x",
  placements: [{ global: false, metadata: {} }],
};
const batch: Batch = {
  title: null,
  canary: false,
  hosts: ["a"],
  replacing: [],
  units: [unit],
  scope: [{ name: unit.name, hosts: ["a"] }],
  placing: [unit],
  watchSeconds: 0,
};
const refusedBy = (node: string): StatusReport =>
  statusReport(node, "web", { refused: { generation: 2, reason: "not signed" } });
/** a scheduler that places when `place` resolves, and whose hosts report `reports` */
const scheduler = (reports: StatusReport[], place: Promise<void>): Scheduler =>
  ({
    placed: async () => {
      await place;
      return { targets: [{ name: unit.name, hosts: ["a"] }], unplaced: [] };
    },
    follow: async <T>(
      _s: string,
      _d: number,
      check: (r: ReadonlyMap<string, StatusReport>) => T | undefined,
      _describe: () => string,
      signal?: AbortSignal,
    ) => {
      const v = check(new Map(reports.map((r) => [r.node, r])));
      if (v !== undefined) return v;
      return new Promise<T>((_resolve, reject) =>
        signal?.addEventListener("abort", () => reject(new Error("aborted"))),
      );
    },
  }) as unknown as Scheduler;
const w = { stack: "web", generation: 2, deadline: Date.now() + 600_000 };

describe("awaitPlacement", () => {
  it("another host's refusal does not fail it; a previewed host's or the holder's does", async () => {
    const placed = await awaitPlacement(
      scheduler([refusedBy("z")], Promise.resolve()),
      w,
      batch,
      [],
      {
        holder: "h",
        who: "the scheduler (h)",
      },
      quiet,
    );
    expect(placed.failure).toBeNull();
    for (const node of ["a", "h"]) {
      const r = await awaitPlacement(
        scheduler([refusedBy(node)], new Promise(() => undefined)),
        w,
        batch,
        [],
        {
          holder: "h",
          who: "the scheduler (h)",
        },
        quiet,
      );
      expect(r.failure).toMatchObject({ host: node, reason: `${node} refused generation 2: not signed` });
    }
  });
  it("a placement that takes more than a moment is said, naming who places (no silent wait)", async () => {
    let release = (): void => undefined;
    const place = new Promise<void>((resolve) => (release = resolve));
    const said: string[] = [];
    const out: Output = {
      ...quiet,
      progress: (text) => {
        said.push(text);
        if (text) release(); // placed once the wait has been said
      },
    };
    const who = "the scheduler (no agent holds the scheduler role now: see houston nodes)";
    const r = await awaitPlacement(scheduler([], place), w, batch, [], { holder: null, who }, out);
    expect(r.failure).toBeNull();
    expect(said[0]).toBe(`waiting for ${who} to place web@2.service`);
    expect(said.at(-1)).toBe("");
  });
});

describe("waitRemoved", () => {
  it("a removal that takes more than a moment is said, naming where the units are still reported", async () => {
    let release = (): void => undefined;
    const gone = new Promise<void>((resolve) => (release = resolve));
    const said: string[] = [];
    const out: Output = {
      ...quiet,
      progress: (text) => {
        said.push(text);
        if (text) release();
      },
    };
    const still = statusReport("a", "web", {
      units: [{ name: "web@1.service", activeState: "active", subState: "x" }],
    });
    const s = {
      follow: async <T>(_s: string, _d: number, check: (r: ReadonlyMap<string, StatusReport>) => T | undefined) => {
        check(new Map([["a", still]]));
        await gone;
        const v = check(new Map([["a", statusReport("a", "web")]]));
        if (v === undefined) throw new Error("not gone");
        return v;
      },
    } as unknown as Scheduler;
    expect(await waitRemoved(s, "web", ["web@1.service"], 3, 600_000, out)).toBe(true);
    expect(said[0]).toBe("waiting for web@1.service to go: still reported on a");
    expect(said.at(-1)).toBe("");
  });
});
