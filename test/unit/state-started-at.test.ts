/**
 * When the agent started each unit (wall clock), kept in its state: the anchor of the unit's
 * journal lines in a report. A state written by an older agent gains the column; a reboot forgets
 * it with the rest of what was started.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { AgentState } from "../../agent/state.js";

let scratch = "";
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

describe("units' start time in the agent's state", () => {
  it("markStarted records when; an older agent's state gains the column; a reboot forgets it", () => {
    scratch = mkdtempSync(join(tmpdir(), "houston-started-"));
    const file = join(scratch, "agent.sqlite");
    // an older agent's units table, without started_at
    const old = new Database(file);
    old.exec(
      "CREATE TABLE units (name TEXT PRIMARY KEY, stack TEXT NOT NULL, hash TEXT NOT NULL, started_hash TEXT, service_id TEXT)",
    );
    old
      .prepare("INSERT INTO units (name, stack, hash, started_hash) VALUES ('old@1.service', 'web', 'h1', 'h1')")
      .run();
    old.close();
    const state = new AgentState(file);
    try {
      state.noteBoot("boot-1");
      expect(state.units()).toEqual([
        { name: "old@1.service", stack: "web", hash: "h1", startedHash: "h1", serviceId: null },
      ]);
      state.claimUnit("new@2.service", "web", "h2");
      state.markStarted("new@2.service", "h2", 1_796_000_000_123);
      expect(state.units().find((u) => u.name === "new@2.service")).toMatchObject({
        startedHash: "h2",
        startedAt: 1_796_000_000_123,
      });
      state.noteBoot("boot-2");
      expect(state.units().find((u) => u.name === "new@2.service")).toEqual({
        name: "new@2.service",
        stack: "web",
        hash: "h2",
        startedHash: null,
        serviceId: null,
      });
    } finally {
      state.close();
    }
  });
});
