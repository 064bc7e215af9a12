/**
 * Paths an archive names, checked by the agent itself (run as root, as the agent is): control
 * characters that a tar reader would hide (a NUL ends a header field).
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { installArchive, parseArchive } from "../../agent/archive.js";
import { AgentState } from "../../agent/state.js";
import { buildArchive } from "../../controller/plan/archive.js";
import { rawTar } from "../helpers/tar.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
let scratch: string;
let root: string;
let state: AgentState;

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "houston-paths-"));
  root = join(scratch, "root");
  mkdirSync(join(root, "etc/cron.d"), { recursive: true });
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\n");
  state = new AgentState(":memory:");
});
afterEach(() => {
  state.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function install(bytes: Buffer, stack = "s"): Promise<void> {
  const digest = sha(bytes);
  installArchive(await parseArchive(bytes, digest), digest, stack, root, state);
}

function file(path: string, content = "x") {
  return { path, content: Buffer.from(content), mode: 0o644, owner: "root", group: "root" };
}

describe("control characters a tar reader would hide", () => {
  it("a NUL in a path (ustar name, PAX path, link target) is refused by the agent; nothing is written", async () => {
    const long = `etc/cron.d/${"j".repeat(120)}`;
    for (const bytes of [
      buildArchive([file("/etc/cron.d/job\0.txt")]).bytes,
      buildArchive([file(`/${long}\0.txt`)]).bytes,
      rawTar([{ path: "etc/cron.d/l", type: "SymbolicLink", linkpath: "job\0../../../x" }]),
    ]) {
      await expect(install(bytes)).rejects.toThrow(/rejected, nothing written: .*\\u0000.*control characters/);
    }
    expect(readdirSync(join(root, "etc/cron.d"))).toEqual([]);
    expect(state.fileOwner("/etc/cron.d/job")).toBeNull();
  });

  it("other control characters in a path are refused too", async () => {
    await expect(install(buildArchive([file("/etc/cron.d/job\u001b[2K")]).bytes)).rejects.toThrow(/control characters/);
    expect(readdirSync(join(root, "etc/cron.d"))).toEqual([]);
  });
});
