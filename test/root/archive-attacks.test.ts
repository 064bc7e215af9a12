/**
 * The agent's file writes, tried as an attacker would (run as root, as the agent is): someone who
 * owns one directory under the root, or who wrote an earlier archive, must not be able to make the
 * agent write, chown, chmod or delete anything outside the root or another stack's files.
 * A sentinel file outside the root is checked byte for byte, with its owner and mode, after each.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { installArchive, parseArchive, removeArchive } from "../../agent/archive.js";
import { AgentState } from "../../agent/state.js";
import { buildArchive } from "../../controller/plan/archive.js";
import { rawTar } from "../helpers/tar.js";

const NOBODY = 65534;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

let scratch: string;
let root: string;
let outside: string;
let sentinel: string;
let state: AgentState;

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "houston-attack-"));
  root = join(scratch, "root");
  outside = join(scratch, "outside");
  mkdirSync(join(root, "etc"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  sentinel = join(outside, "sentinel");
  writeFileSync(sentinel, "precious\n", { mode: 0o600 });
  chownSync(sentinel, NOBODY, NOBODY);
  chmodSync(sentinel, 0o600);
  state = new AgentState(":memory:");
});
afterEach(() => {
  state.close();
  rmSync(scratch, { recursive: true, force: true });
});

function expectSentinelIntact(): void {
  const st = lstatSync(sentinel);
  expect(st.isFile()).toBe(true);
  expect(readFileSync(sentinel, "utf8")).toBe("precious\n");
  expect(st.uid).toBe(NOBODY);
  expect(st.mode & 0o7777).toBe(0o600);
}

async function install(bytes: Buffer, stack = "s"): Promise<void> {
  const digest = sha(bytes);
  installArchive(await parseArchive(bytes, digest), digest, stack, root, state);
}

function file(path: string, content: string, owner = "root") {
  return { path, content: Buffer.from(content), mode: 0o644, owner, group: owner === "root" ? "root" : "nogroup" };
}

describe("archive writes cannot be redirected", () => {
  it("a temp-name symlink planted by the owner of the target directory: refused, naming the directory", async () => {
    mkdirSync(join(root, "srv/app"), { recursive: true });
    chownSync(join(root, "srv/app"), NOBODY, NOBODY);
    // the name the agent's temp file used to have, and a few guesses
    for (const name of [`.conf.houston-tmp-${process.pid}`, ".conf.houston-tmp", ".conf"])
      symlinkSync(sentinel, join(root, "srv/app", name));
    const a = buildArchive([file("/srv/app/conf", "pwned\n")]);
    await expect(install(a.bytes)).rejects.toThrow(/directory .*\/srv\/app is owned by uid 65534, not root/);
    expectSentinelIntact();
    expect(existsSync(join(root, "srv/app/conf"))).toBe(false);
  });

  it("a group- or world-writable directory on the way is refused; a root-owned sticky one is not", async () => {
    mkdirSync(join(root, "shared"), { mode: 0o777 });
    chmodSync(join(root, "shared"), 0o777);
    await expect(install(buildArchive([file("/shared/x", "x")]).bytes)).rejects.toThrow(
      /\/shared is writable by its group/,
    );
    chmodSync(join(root, "shared"), 0o1777);
    await install(buildArchive([file("/shared/y", "y")]).bytes);
    expect(readFileSync(join(root, "shared/y"), "utf8")).toBe("y");
  });

  it("a parent swapped for a symlink after install: removal deletes nothing outside the root", async () => {
    const a = buildArchive([file("/etc/app/sentinel", "mine")]);
    await install(a.bytes);
    // swap /etc/app for a link to the directory holding the sentinel
    renameSync(join(root, "etc/app"), join(root, "etc/app.old"));
    symlinkSync(outside, join(root, "etc/app"));
    expect(() => removeArchive(a.sha256, root, state)).toThrow(/left in place: .*\/etc\/app\/sentinel/);
    expectSentinelIntact();
  });

  it("a parent handed to another user after install: removal refuses to delete through it", async () => {
    const a = buildArchive([file("/etc/app/conf", "mine")]);
    await install(a.bytes);
    chownSync(join(root, "etc/app"), NOBODY, NOBODY);
    expect(() => removeArchive(a.sha256, root, state)).toThrow(/owned by uid 65534/);
    expect(existsSync(join(root, "etc/app/conf"))).toBe(true);
  });

  it("chained '..' links across two archives cannot reach outside the root", async () => {
    // s1 -> ..  resolves to the root itself (allowed); s2 -> s1/..  is root/.. as the kernel sees it
    await install(rawTar([{ path: "a/s1", type: "SymbolicLink", linkpath: ".." }]));
    await expect(install(rawTar([{ path: "a/s2", type: "SymbolicLink", linkpath: "s1/.." }]))).rejects.toThrow(
      /symlink to s1\/\.\. resolves outside the root/,
    );
    // with s2 refused, a write "through" it makes a plain directory inside the root
    await install(rawTar([{ path: "a/s2/outside/sentinel", data: "pwned" }]));
    expectSentinelIntact();
    expect(lstatSync(join(root, "a/s2")).isDirectory()).toBe(true);
  });

  it("chained links within one archive are resolved like links on disk", async () => {
    const bytes = rawTar([
      { path: "b/s1", type: "SymbolicLink", linkpath: ".." },
      { path: "b/s2", type: "SymbolicLink", linkpath: "s1/.." },
    ]);
    await expect(install(bytes)).rejects.toThrow(/b\/s2: symlink to s1\/\.\. resolves outside the root/);
    expect(existsSync(join(root, "b"))).toBe(false);
  });

  it("an absolute link target is resolved as the kernel will: outside the root is refused", async () => {
    await expect(install(rawTar([{ path: "etc/link", type: "SymbolicLink", linkpath: outside }]))).rejects.toThrow(
      /resolves outside the root/,
    );
    expect(existsSync(join(root, "etc/link"))).toBe(false);
    // an absolute target that does land inside the root is fine
    await install(rawTar([{ path: "etc/inside", type: "SymbolicLink", linkpath: join(root, "etc/passwd") }]));
    expect(lstatSync(join(root, "etc/inside")).isSymbolicLink()).toBe(true);
  });

  it("a link left by an earlier archive cannot carry a later write outside", async () => {
    mkdirSync(join(root, "opt"));
    await install(rawTar([{ path: "opt/data", type: "SymbolicLink", linkpath: "../etc" }]));
    // through the link, still inside the root: allowed, and owned by its real path
    await install(buildArchive([file("/opt/data/app.conf", "ok")]).bytes);
    expect(readFileSync(join(root, "etc/app.conf"), "utf8")).toBe("ok");
    await expect(install(buildArchive([file("/etc/app.conf", "again")]).bytes, "other")).rejects.toThrow(
      /\/etc\/app.conf is owned by stack s/,
    );
  });

  it("another stack's file is not taken over; the same stack hands over between versions", async () => {
    await install(buildArchive([file("/etc/shared.conf", "from a")]).bytes, "a");
    await expect(install(buildArchive([file("/etc/shared.conf", "from b")]).bytes, "b")).rejects.toThrow(
      /\/etc\/shared.conf is owned by stack a; refusing to take it over/,
    );
    expect(readFileSync(join(root, "etc/shared.conf"), "utf8")).toBe("from a");
    await install(buildArchive([file("/etc/shared.conf", "a v2")]).bytes, "a");
    expect(readFileSync(join(root, "etc/shared.conf"), "utf8")).toBe("a v2");
  });

  it("an archive cannot drop unit files or drop-ins where systemd reads them", async () => {
    for (const path of [
      "/etc/systemd/system/getty@tty1.service",
      "/etc/systemd/system/sshd.service.d/override.conf",
      "/usr/lib/systemd/system/x.service",
      "/run/systemd/system/y.service",
    ]) {
      await expect(install(buildArchive([file(path, "[Service]\nExecStart=/bin/sh -c evil\n")]).bytes)).rejects.toThrow(
        /are not accepted: units are Houston's to write/,
      );
    }
    const unitDir = join(scratch, "units");
    mkdirSync(unitDir);
    symlinkSync(unitDir, join(root, "units-link"));
    const a = buildArchive([file("/units-link/evil.service", "x")]);
    expect(() => installArchive([], a.sha256, "s", root, state, unitDir)).not.toThrow();
    await expect(
      parseArchive(a.bytes, a.sha256).then((e) => installArchive(e, a.sha256, "s", root, state, unitDir)),
    ).rejects.toThrow(/units are Houston's to write|outside the root/);
    expect(existsSync(join(unitDir, "evil.service"))).toBe(false);
  });

  it("setuid/setgid files, control characters and empty link targets are refused", async () => {
    await expect(install(rawTar([{ path: "usr/bin/rootshell", data: "x", mode: 0o4755 }]))).rejects.toThrow(
      /setuid\/setgid bits are not accepted/,
    );
    await expect(install(rawTar([{ path: "etc/a\nb", data: "x" }]))).rejects.toThrow(/control characters/);
    await expect(install(rawTar([{ path: "etc/l", type: "SymbolicLink", linkpath: "" }]))).rejects.toThrow(
      /symlink target "" is not accepted|linkpath required/,
    );
  });

  it("files are created with their owner and mode, never via a pre-existing temp file", async () => {
    mkdirSync(join(root, "etc/app"));
    await install(
      buildArchive([
        { path: "/etc/app/key", content: Buffer.from("k"), mode: 0o640, owner: "nobody", group: "nogroup" },
      ]).bytes,
    );
    const st = statSync(join(root, "etc/app/key"));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([NOBODY, NOBODY, 0o640]);
    expect(readFileSync(join(root, "etc/app/key"), "utf8")).toBe("k");
  });
});
