/**
 * The agent's state holds every spec of the fleet (other hosts' file contents included): its
 * directory is 0700 and its SQLite files 0600 whatever the umask, and looser modes left by an
 * older agent are tightened at start.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentState } from "../../agent/state.js";

const mode = (p: string): string => (statSync(p).mode & 0o7777).toString(8);
let scratch: string;
let umask: number;

function open(dir: string): AgentState {
  const state = new AgentState(join(dir, "agent.sqlite"));
  state.noteBoot("boot-1"); // a write: the -wal and -shm files exist from here on
  return state;
}

afterEach(() => {
  process.umask(umask);
  rmSync(scratch, { recursive: true, force: true });
});

describe("the agent's state is readable by root alone", () => {
  it("a new state dir is 0700 and agent.sqlite, -wal and -shm 0600, under umask 000", () => {
    scratch = mkdtempSync(join(tmpdir(), "houston-state-"));
    umask = process.umask(0);
    const dir = join(scratch, "lib", "houston");
    const state = open(dir);
    try {
      expect(mode(dir)).toBe("700");
      for (const f of ["agent.sqlite", "agent.sqlite-wal", "agent.sqlite-shm"])
        expect(mode(join(dir, f)), f).toBe("600");
    } finally {
      state.close();
    }
  });

  it("an existing dir and files with looser modes are tightened at start", () => {
    scratch = mkdtempSync(join(tmpdir(), "houston-state-"));
    umask = process.umask(0o022);
    const dir = join(scratch, "houston");
    open(dir).close();
    chmodSync(dir, 0o755);
    chmodSync(join(dir, "agent.sqlite"), 0o644);
    for (const f of ["agent.sqlite-wal", "agent.sqlite-shm"]) writeFileSync(join(dir, f), "", { mode: 0o644 });
    const state = open(dir);
    try {
      expect(mode(dir)).toBe("700");
      for (const f of ["agent.sqlite", "agent.sqlite-wal", "agent.sqlite-shm"])
        expect(mode(join(dir, f)), f).toBe("600");
    } finally {
      state.close();
    }
  });

  it("a shared sticky directory (like /tmp) is refused, not made private", () => {
    scratch = mkdtempSync(join(tmpdir(), "houston-state-"));
    umask = process.umask(0o022);
    const shared = join(scratch, "tmp");
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    expect(() => new AgentState(join(shared, "agent.sqlite"))).toThrow(/state directory .*tmp is shared \(mode 1777\)/);
    expect(mode(shared)).toBe("1777");
  });
});
