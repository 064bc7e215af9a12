/**
 * Which journal lines a report carries for a unit in trouble: those of its runs under this deploy,
 * read after journald took in what it was sent. A crash loop is reported after systemd restarted
 * the unit (its InactiveExitTimestamp is then the new run's): the lines are read since the agent
 * started the unit, or, when that is not known, since the earliest start it saw; a unit that went
 * inactive starts over.
 */
import { describe, expect, it } from "vitest";
import { UnitStates, type Journal } from "../../agent/unit-states.js";
import type { UnitState } from "../../agent/systemd.js";
import type { OwnedUnit } from "../../agent/state.js";
import type { HostDesired } from "../../agent/targeting.js";

const NAME = "lone-dies@5.service";
const S = 1_000_000;
const desired: HostDesired = {
  units: [
    {
      name: NAME,
      runner: "agent",
      stack: "lone",
      role: "dependency",
      version: "5",
      group: null,
      text: "",
      hash: "h",
      window: 5,
    },
  ],
  archives: new Map(),
  generations: new Map([["lone", 9]]),
  refused: new Map(),
};
const owned = (startedHash: string, startedAt?: number): OwnedUnit[] => [
  { name: NAME, stack: "lone", hash: startedHash, startedHash, serviceId: null, ...(startedAt ? { startedAt } : {}) },
];

/** a host whose clocks and unit state the test moves; the journal records what it was asked */
function host() {
  const clock = { mono: 100 * S, wall: 1_800_000_000 * S };
  let state: UnitState = { loadState: "loaded", activeState: "inactive", subState: "dead" };
  const asked: (number | undefined)[] = [];
  const calls: string[] = [];
  const journal: Journal = {
    sync: async () => void calls.push("sync"),
    lines: async (_unit, sinceUs) => {
      calls.push("lines");
      asked.push(sinceUs);
      return ["version 5 dies after 0.5s"];
    },
  };
  const systemd = {
    unitStates: async (names: string[], opts: { activeSince?: ReadonlySet<string> } = {}) =>
      new Map(
        names.map((n) => {
          const { activeEnterUs, ...rest } = state;
          return [n, opts.activeSince?.has(n) && activeEnterUs !== undefined ? { ...rest, activeEnterUs } : rest];
        }),
      ),
  };
  const states = new UnitStates(
    systemd,
    journal,
    () => clock.mono,
    () => clock.wall,
  );
  return {
    clock,
    asked,
    calls,
    set: (s: UnitState) => (state = s),
    read: (hash = "h", startedAt?: number) => states.read(owned(hash, startedAt), desired),
  };
}

describe("journal lines of a unit in trouble", () => {
  it("a crash loop reported after its restart still carries the run that died (since its first look)", async () => {
    const h = host();
    // seen active 2 s after it started (monotonic 98 s = wall 1_800_000_000 - 2 s)
    h.set({ loadState: "loaded", activeState: "active", subState: "running", activeEnterUs: 98 * S });
    expect((await h.read()).states.get(NAME)?.log).toBeUndefined();
    // it died, and systemd restarted it before the agent read InactiveExitTimestamp
    h.clock.mono += 3 * S;
    h.clock.wall += 3 * S;
    h.set({
      loadState: "loaded",
      activeState: "activating",
      subState: "auto-restart",
      result: "exit-code",
      nRestarts: 0,
      startedUs: h.clock.wall,
    });
    const { states } = await h.read();
    expect(states.get(NAME)?.log).toEqual(["version 5 dies after 0.5s"]);
    expect(h.asked).toEqual([1_800_000_000 * S - 2 * S]);
    expect(h.calls).toEqual(["sync", "lines"]);
  });

  it("a unit first seen failed is read since its own start; read again only when it changed", async () => {
    const h = host();
    h.set({ loadState: "loaded", activeState: "failed", subState: "failed", result: "exit-code", startedUs: 7 * S });
    await h.read();
    await h.read();
    expect(h.asked).toEqual([7 * S]);
    expect(h.calls).toEqual(["sync", "lines"]);
  });

  it("once inactive, or started with other content, an earlier start is forgotten", async () => {
    const h = host();
    h.set({ loadState: "loaded", activeState: "failed", subState: "failed", result: "exit-code", startedUs: 7 * S });
    await h.read();
    h.set({ loadState: "loaded", activeState: "inactive", subState: "dead" });
    await h.read();
    h.set({ loadState: "loaded", activeState: "failed", subState: "failed", result: "signal", startedUs: 9 * S });
    await h.read();
    h.set({
      loadState: "loaded",
      activeState: "failed",
      subState: "failed",
      result: "signal",
      nRestarts: 1,
      startedUs: 11 * S,
    });
    await h.read("other");
    expect(h.asked).toEqual([7 * S, 9 * S, 11 * S]);
  });

  it("systemd 254's inactive/dead-before-auto-restart is part of the loop: the first start is kept", async () => {
    const h = host();
    h.set({ loadState: "loaded", activeState: "active", subState: "running", activeEnterUs: 98 * S });
    await h.read();
    h.set({ loadState: "loaded", activeState: "inactive", subState: "dead-before-auto-restart", result: "exit-code" });
    await h.read();
    h.set({
      loadState: "loaded",
      activeState: "activating",
      subState: "auto-restart-queued",
      result: "exit-code",
      nRestarts: 1,
      startedUs: h.clock.wall + S,
    });
    await h.read();
    expect(h.asked.at(-1)).toBe(1_800_000_000 * S - 2 * S);
  });

  it("a failed unit started again under the same content is read since its new start", async () => {
    const h = host();
    h.set({ loadState: "loaded", activeState: "failed", subState: "failed", result: "exit-code", startedUs: 7 * S });
    await h.read();
    h.set({ loadState: "loaded", activeState: "activating", subState: "start", startedUs: 20 * S });
    await h.read();
    h.set({ loadState: "loaded", activeState: "failed", subState: "failed", result: "exit-code", startedUs: 20 * S });
    await h.read();
    expect(h.asked).toEqual([7 * S, 20 * S]);
  });

  it("since the agent started the unit, when its state knows (ms): whatever systemd says of this run", async () => {
    const h = host();
    h.set({
      loadState: "loaded",
      activeState: "activating",
      subState: "auto-restart",
      result: "exit-code",
      nRestarts: 3,
      startedUs: 50 * S,
    });
    await h.read("h", 40_000);
    expect(h.asked).toEqual([40 * S]);
  });
});
