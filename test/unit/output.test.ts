/**
 * The controller's output off a terminal: a wait is never silent. An unchanged progress line is
 * said again, with how long it has lasted, until the progress changes or clears.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { consoleOutput, PROGRESS_REPEAT_MS } from "../../controller/output.js";

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
