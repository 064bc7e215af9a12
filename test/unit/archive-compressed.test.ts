/**
 * The agent reads only plain tar archives, as the controller builds them: node-tar's parser would
 * otherwise gunzip what it is given, so a gzipped archive would hide its headers from the scan for
 * names cut at a NUL (agent/tar-scan.ts) and inflate up to 1000 times the bytes the agent's
 * --max-archive-size allowed, into memory, before any check. Such an archive is refused first.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { parseArchive } from "../../agent/archive.js";
import { buildArchive } from "../../controller/plan/archive.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const file = (path: string, content = "x") => ({
  path,
  content: Buffer.from(content),
  mode: 0o644,
  owner: "root",
  group: "root",
});

describe("compressed archives", () => {
  it("a plain tar is read", async () => {
    const { bytes } = buildArchive([file("/srv/a.txt")]);
    expect((await parseArchive(bytes, sha(bytes))).map((e) => e.path)).toEqual(["srv/a.txt"]);
  });

  it.each([
    ["a gzipped tar", gzipSync(buildArchive([file("/srv/a.txt")]).bytes)],
    ["a gzipped tar hiding a name cut at a NUL", gzipSync(buildArchive([file("/etc/cron.d/job\0.txt")]).bytes)],
    ["a gzip bomb (a 100 MB file of zeros)", gzipSync(buildArchive([file("/srv/zeros", "\0".repeat(100e6))]).bytes)],
  ])("%s is refused before it is parsed", async (_t, bytes) => {
    await expect(parseArchive(bytes, sha(bytes))).rejects.toThrow(
      /is compressed \(gzip\); the agent reads only plain tar archives, as the controller builds them/,
    );
  });

  it("a zstd frame is refused too (node-tar sniffs its magic)", async () => {
    const bytes = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(1020)]);
    await expect(parseArchive(bytes, sha(bytes))).rejects.toThrow(/is compressed \(zstd\)/);
  });
});
