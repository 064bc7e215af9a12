/**
 * Paths an archive names, checked by the agent itself (run as root, as the agent is): control
 * characters that a tar reader would hide (a NUL ends a header field), and paths through a
 * symlink that Houston did not create for the same stack.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
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

describe("paths through symlinks", () => {
  it("another stack's link cannot carry a write: archive 1 lnk -> etc, archive 2 lnk/cron-job", async () => {
    await install(rawTar([{ path: "lnk", type: "SymbolicLink", linkpath: "etc" }]), "a");
    await expect(install(buildArchive([file("/lnk/cron-job", "* * * * * root evil\n")]).bytes, "b")).rejects.toThrow(
      /\/lnk\/cron-job: the path goes through the symlink \/lnk \(-> etc\), which stack a created, not stack b/,
    );
    expect(existsSync(join(root, "etc/cron-job"))).toBe(false);
    expect(state.fileOwner("/etc/cron-job")).toBeNull();
    expect(state.fileOwner("/lnk/cron-job")).toBeNull();
  });

  it("a symlink Houston did not create is not written through", async () => {
    symlinkSync("etc", join(root, "sys-link"));
    await expect(install(buildArchive([file("/sys-link/cron.d/job")]).bytes)).rejects.toThrow(
      /\/sys-link\/cron.d\/job: the path goes through the symlink \/sys-link \(-> etc\), which Houston did not create/,
    );
    expect(existsSync(join(root, "etc/cron.d/job"))).toBe(false);
  });

  it("the same stack's link is followed, and the file is recorded under the path the kernel writes", async () => {
    await install(rawTar([{ path: "lnk", type: "SymbolicLink", linkpath: "etc" }]), "a");
    await install(buildArchive([file("/lnk/app.conf", "ok")]).bytes, "a");
    expect(readFileSync(join(root, "etc/app.conf"), "utf8")).toBe("ok");
    expect(lstatSync(join(root, "lnk")).isSymbolicLink()).toBe(true);
    expect(state.fileOwner("/etc/app.conf")?.stack).toBe("a");
    expect(state.fileOwner("/lnk/app.conf")).toBeNull();
  });
});
