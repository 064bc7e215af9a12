import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { installArchive, parseArchive, removeArchive } from "../../agent/archive.js";
import { verifyArchive } from "../../shared/archive-store.js";
import { AgentState } from "../../agent/state.js";
import { buildArchive } from "../../controller/plan/archive.js";
import { ArchiveRejectedError } from "../../shared/errors.js";
import { rawTar } from "../helpers/tar.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
function root(): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-root-"));
  mkdirSync(join(dir, "etc"));
  writeFileSync(join(dir, "etc/passwd"), "root:x:0:0::/root:/bin/sh\ncore:x:500:500::/home/core:/bin/sh\n");
  writeFileSync(join(dir, "etc/group"), "root:x:0:\ncore:x:500:\n");
  return dir;
}

describe("archives on a host", () => {
  it("round-trips a controller archive: paths, content, modes; removal leaves what was there", async () => {
    const r = root();
    const state = new AgentState(":memory:");
    const a = buildArchive([
      { path: "/etc/app/conf", content: Buffer.from("x=1\n"), mode: 0o600, owner: "root", group: "root" },
      { path: "/opt/app/bin/run", content: Buffer.from("#!/bin/sh\n"), mode: 0o755, owner: "root", group: "root" },
    ]);
    installArchive(await parseArchive(verifyArchive(a.bytes, a.sha256), a.sha256), a.sha256, "s", r, state);
    expect(readFileSync(join(r, "etc/app/conf"), "utf8")).toBe("x=1\n");
    expect(statSync(join(r, "etc/app/conf")).mode & 0o7777).toBe(0o600);
    expect(statSync(join(r, "opt/app/bin/run")).mode & 0o7777).toBe(0o755);
    removeArchive(a.sha256, r, state);
    expect(existsSync(join(r, "etc/app"))).toBe(false);
    expect(existsSync(join(r, "opt"))).toBe(false);
    expect(existsSync(join(r, "etc/passwd"))).toBe(true);
  });

  it("rejects a digest mismatch before parsing anything", () => {
    const a = buildArchive([{ path: "/a", content: Buffer.from("a"), mode: 0o644, owner: "root", group: "root" }]);
    const tampered = Buffer.from(a.bytes);
    tampered[600] = 0x41;
    expect(() => verifyArchive(tampered, a.sha256)).toThrow(/digest mismatch/);
  });

  const malicious: [string, Buffer, RegExp][] = [
    [
      "a '..' path",
      rawTar([
        { path: "etc/ok", data: "ok" },
        { path: "../escape", data: "x" },
      ]),
      /\.\.\/escape: path escapes the root/,
    ],
    ["a nested '..' path", rawTar([{ path: "etc/../../escape", data: "x" }]), /path escapes the root/],
    [
      "a symlink pointing outside",
      rawTar([{ path: "etc/link", type: "SymbolicLink", linkpath: "../../../outside" }]),
      /symlink to \.\.\/\.\.\/\.\.\/outside points outside the root/,
    ],
    [
      "a hard link",
      rawTar([{ path: "etc/hard", type: "Link", linkpath: "etc/passwd" }]),
      /hard links are not accepted/,
    ],
    ["a device", rawTar([{ path: "dev/evil", type: "CharacterDevice" }]), /CharacterDevice is not accepted/],
    [
      "a file through an archive symlink",
      rawTar([
        { path: "lnk", type: "SymbolicLink", linkpath: "etc" },
        { path: "lnk/passwd", data: "x" },
      ]),
      /lnk\/passwd: path goes through a symlink/,
    ],
  ];
  for (const [title, bytes, re] of malicious) {
    it(`rejects ${title}, writing nothing`, async () => {
      const err = await parseArchive(bytes, sha(bytes)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ArchiveRejectedError);
      expect(String((err as Error).message)).toMatch(re);
      expect(String((err as Error).message)).toContain("nothing written");
    });
  }

  it("never overwrites a file Houston did not create, and writes nothing of that archive", async () => {
    const r = root();
    writeFileSync(join(r, "etc/hosts"), "mine\n");
    const state = new AgentState(":memory:");
    const a = buildArchive([
      { path: "/etc/aaa", content: Buffer.from("a"), mode: 0o644, owner: "root", group: "root" },
      { path: "/etc/hosts", content: Buffer.from("theirs"), mode: 0o644, owner: "root", group: "root" },
    ]);
    const entries = await parseArchive(a.bytes, a.sha256);
    expect(() => installArchive(entries, a.sha256, "s", r, state)).toThrow(
      /\/etc\/hosts exists and was not created by Houston/,
    );
    expect(readFileSync(join(r, "etc/hosts"), "utf8")).toBe("mine\n");
    expect(existsSync(join(r, "etc/aaa"))).toBe(false);
  });

  // `houston adopt` recorded what the original Houston's archive of stack "shop" wrote: /etc/shop/shop.env
  const takeoverCases: [string, { stack: string; path: string; symlinkedDir?: boolean }, RegExp | null][] = [
    [
      "the very file the original's archive of this stack named is replaced",
      { stack: "shop", path: "/etc/shop/shop.env" },
      null,
    ],
    [
      "another stack may not take it",
      { stack: "web", path: "/etc/shop/shop.env" },
      /\/etc\/shop\/shop\.env exists and was not created by Houston/,
    ],
    [
      "a file the original's archive did not name stays refused",
      { stack: "shop", path: "/etc/shop/other.env" },
      /\/etc\/shop\/other\.env exists and was not created by Houston/,
    ],
    [
      "the named path reached through a symlink is not the named file",
      { stack: "shop", path: "/etc/shop/shop.env", symlinkedDir: true },
      /exists and was not created by Houston|symlink/,
    ],
  ];
  for (const [title, c, refused] of takeoverCases)
    it(`takeover of the original Houston's files: ${title}`, async () => {
      const r = root();
      const dir = c.symlinkedDir ? "srv/real" : "etc/shop";
      mkdirSync(join(r, dir), { recursive: true });
      if (c.symlinkedDir) symlinkSync(join(r, "srv/real"), join(r, "etc/shop"));
      writeFileSync(join(r, "etc/shop", c.path.split("/").pop() ?? ""), "SHOP_ENVIRONMENT=lab\n");
      const state = new AgentState(":memory:");
      const a = buildArchive([
        { path: c.path, content: Buffer.from("SHOP_ENVIRONMENT=lab2\n"), mode: 0o644, owner: "root", group: "root" },
      ]);
      const entries = await parseArchive(a.bytes, a.sha256);
      chmodSync(join(r, "etc/shop", c.path.split("/").pop() ?? ""), 0o640);
      // what stacks/shop/adopted records (shared/stores/adopted.ts): shop's files only
      const takeover = new Set(c.stack === "shop" ? ["/etc/shop/shop.env"] : []);
      const install = () => installArchive(entries, a.sha256, c.stack, r, state, undefined, takeover);
      if (refused) {
        expect(install).toThrow(refused);
        expect(readFileSync(join(r, c.path), "utf8")).toBe("SHOP_ENVIRONMENT=lab\n");
        return;
      }
      install();
      expect(readFileSync(join(r, c.path), "utf8")).toBe("SHOP_ENVIRONMENT=lab2\n");
      expect(state.fileOwner(c.path)?.stack).toBe("shop");
      // removed while adopt still names it (a failed deploy's restore): what the original wrote comes back
      removeArchive(a.sha256, r, state, takeover);
      expect(readFileSync(join(r, c.path), "utf8")).toBe("SHOP_ENVIRONMENT=lab\n");
      expect(statSync(join(r, c.path)).mode & 0o7777).toBe(0o640);
      expect(state.fileOwner(c.path)).toBeNull();
      expect(state.originalOf(c.path)).toBeNull();
      // the next deploy takes it over again; once it is confirmed (adopt no longer names it) it stays
      install();
      expect(readFileSync(join(r, c.path), "utf8")).toBe("SHOP_ENVIRONMENT=lab2\n");
      // the next archive of the stack hands it over; removing an archive never deletes a taken file
      const b = buildArchive([
        { path: c.path, content: Buffer.from("SHOP_ENVIRONMENT=lab3\n"), mode: 0o644, owner: "root", group: "root" },
      ]);
      installArchive(await parseArchive(b.bytes, b.sha256), b.sha256, "shop", r, state);
      removeArchive(a.sha256, r, state);
      expect(state.fileOwner(c.path)?.archive).toBe(b.sha256);
      removeArchive(b.sha256, r, state);
      expect(readFileSync(join(r, c.path), "utf8")).toBe("SHOP_ENVIRONMENT=lab3\n");
      expect(state.originalOf(c.path)).toBeNull();
      // left in place (`remove`), it stays the stack's: a later deploy of it writes it again, no other stack may
      expect(state.fileOwner(c.path)).toEqual({ archive: "", stack: "shop" });
      const d = buildArchive([
        { path: c.path, content: Buffer.from("SHOP_ENVIRONMENT=lab4\n"), mode: 0o644, owner: "root", group: "root" },
      ]);
      const dEntries = await parseArchive(d.bytes, d.sha256);
      expect(() => installArchive(dEntries, d.sha256, "web", r, state)).toThrow(
        /\/etc\/shop\/shop\.env is owned by stack shop; refusing to take it over/,
      );
      installArchive(dEntries, d.sha256, "shop", r, state);
      expect(readFileSync(join(r, c.path), "utf8")).toBe("SHOP_ENVIRONMENT=lab4\n");
      expect(state.fileOwner(c.path)?.archive).toBe(d.sha256);
      removeArchive(d.sha256, r, state);
      expect(readFileSync(join(r, c.path), "utf8"), "a taken file is never deleted").toBe("SHOP_ENVIRONMENT=lab4\n");
    });

  it("refuses parents that lead outside the root and unknown owners", async () => {
    const r = root();
    const outside = mkdtempSync(join(tmpdir(), "houston-outside-"));
    symlinkSync(outside, join(r, "var"));
    const state = new AgentState(":memory:");
    const a = buildArchive([{ path: "/var/x", content: Buffer.from("x"), mode: 0o644, owner: "root", group: "root" }]);
    const entries = await parseArchive(a.bytes, a.sha256);
    expect(() => installArchive(entries, a.sha256, "s", r, state)).toThrow(/\/var leads outside the root/);
    expect(existsSync(join(outside, "x"))).toBe(false);
    const b = buildArchive([
      { path: "/etc/y", content: Buffer.from("y"), mode: 0o644, owner: "nobody-here", group: "root" },
    ]);
    const bEntries = await parseArchive(b.bytes, b.sha256);
    expect(() => installArchive(bEntries, b.sha256, "s", r, state)).toThrow(
      /user nobody-here does not exist on this host/,
    );
  });

  it("hands a file over to a newer archive; removing the older one leaves it", async () => {
    const r = root();
    const state = new AgentState(":memory:");
    const v1 = buildArchive([
      { path: "/etc/app", content: Buffer.from("1"), mode: 0o644, owner: "core", group: "core" },
    ]);
    const v2 = buildArchive([
      { path: "/etc/app", content: Buffer.from("2"), mode: 0o644, owner: "core", group: "core" },
    ]);
    installArchive(await parseArchive(v1.bytes, v1.sha256), v1.sha256, "s", r, state);
    installArchive(await parseArchive(v2.bytes, v2.sha256), v2.sha256, "s", r, state);
    expect(statSync(join(r, "etc/app")).uid).toBe(500);
    removeArchive(v1.sha256, r, state);
    expect(readFileSync(join(r, "etc/app"), "utf8")).toBe("2");
    removeArchive(v2.sha256, r, state);
    expect(existsSync(join(r, "etc/app"))).toBe(false);
  });
});
