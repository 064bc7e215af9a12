/**
 * The controller's output off a terminal: a wait is never silent. An unchanged progress line is
 * said again, with how long it has lasted, until the progress changes or clears. No escape codes
 * but the live line's on a terminal (not CI, not TERM=dumb); none carried in from elsewhere.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { consoleOutput, liveTerminal, PROGRESS_REPEAT_MS, visible } from "../../controller/output.js";

describe("consoleOutput off a terminal", () => {
  let lines: string[];
  beforeEach(() => {
    vi.useFakeTimers();
    lines = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it("repeats an unchanged wait every 10 s with its duration, and stops when it changes", () => {
    const out = consoleOutput({ verbose: false });
    out.progress("shop in Consul: waiting on fb1");
    expect(lines).toEqual(["INFO     shop in Consul: waiting on fb1\n"]);
    vi.advanceTimersByTime(PROGRESS_REPEAT_MS);
    expect(lines[1]).toBe("INFO     shop in Consul: waiting on fb1 (still waiting, 10s)\n");
    vi.advanceTimersByTime(PROGRESS_REPEAT_MS);
    expect(lines[2]).toBe("INFO     shop in Consul: waiting on fb1 (still waiting, 20s)\n");
    out.progress("shop in Consul: waiting on fb2");
    vi.advanceTimersByTime(PROGRESS_REPEAT_MS - 1);
    expect(lines).toHaveLength(4);
    out.progress("");
    vi.advanceTimersByTime(5 * PROGRESS_REPEAT_MS);
    expect(lines).toHaveLength(4);
  });

  it("does not repeat the same text given again", () => {
    const out = consoleOutput({ verbose: false });
    out.progress("a");
    out.progress("a");
    expect(lines).toHaveLength(1);
    out.progress("");
  });
});

describe("no terminal escape codes but the live line's", () => {
  it("visible(): control characters from elsewhere are shown, line breaks and tabs kept", () => {
    expect(visible("a\u001b[2Jb\r\u0007\u009b31m\tc\nd")).toBe("a\\u001b[2Jb\\u000d\\u0007\\u009b31m\tc\nd");
    expect(visible("plain text, ünïcode → ok")).toBe("plain text, ünïcode → ok");
  });
  it("print and log write what they are given through visible()", () => {
    const err: string[] = [];
    const std: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => (err.push(String(c)), true));
    vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => (std.push(String(c)), true));
    const out = consoleOutput({ verbose: false });
    out.error("agent says \u001b]0;owned\u0007");
    out.print("unit \u001b[31mred");
    vi.restoreAllMocks();
    expect([...err, ...std].join("")).not.toContain("\u001b");
    expect(err.join("")).toContain("agent says \\u001b]0;owned\\u0007");
  });
  const cases: [string, { isTTY?: boolean }, NodeJS.ProcessEnv, boolean][] = [
    ["a terminal", { isTTY: true }, { TERM: "xterm" }, true],
    ["not a terminal", { isTTY: false }, { TERM: "xterm" }, false],
    ["a pipe (isTTY undefined)", {}, {}, false],
    ["CI", { isTTY: true }, { CI: "true" }, false],
    ["TERM=dumb", { isTTY: true }, { TERM: "dumb" }, false],
  ];
  for (const [title, stream, env, live] of cases)
    it(`live progress line: ${title} → ${live}`, () => expect(liveTerminal(stream, env)).toBe(live));
});
