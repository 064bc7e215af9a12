/**
 * `houston … | head -1`: the reader goes away while the CLI still prints. That is not an error:
 * no stack trace, the exit status is the command's own.
 */
import { describe, expect, it } from "vitest";
import { configDir, startCli } from "../helpers/cli.js";

describe("a closed pipe on stdout", () => {
  it("plan of a big stack piped into a reader that reads one chunk: exit 0, nothing on stderr but the plan's notes", async () => {
    const names = Array.from({ length: 300 }, (_, i) => `u${i}`);
    const files: Record<string, string> = {
      "manifest.yaml": `environments:\n  test: {}\nshared-stacks:\n  big: [${names.map((n) => `${n}:1`).join(", ")}]\n`,
    };
    for (const n of names)
      files[`units/shared/${n}.service`] = `[Unit]\nDescription=${"x".repeat(400)}\n[Service]\nExecStart=/bin/true\n`;
    const dir = configDir(files);
    const { child, done } = startCli("http://127.0.0.1:1", dir, ["plan", "--full", "standalone", "big"]);
    // as head -1 does: read the first chunk, then close the pipe
    child.stdout?.once("data", () => child.stdout?.destroy());
    const { code, stderr } = await done;
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(code).toBe(0);
  });
});
