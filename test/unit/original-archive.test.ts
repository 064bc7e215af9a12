/**
 * The original Houston's archives as `houston adopt` reads them (shared/original-archive.ts): the
 * file unit's name gives the stack, the KV value (base64 of a tar) the paths it wrote.
 */
import { describe, expect, it } from "vitest";
import { originalArchivePaths, originalFileUnitStack } from "../../shared/original-archive.js";
import { rawTar, type RawEntry } from "../helpers/tar.js";

const b64 = (tar: Buffer): Buffer => Buffer.from(tar.toString("base64"));

describe("the original Houston's archives", () => {
  it.each([
    ["shop-file-deploy@0a1b2c3d.service", "shop"],
    ["global-file-deploy@ff.service", "global"],
    ["my-shop-file-deploy@1.service", "my-shop"],
    ["shop@1.service", null],
    ["shop-file-deploy.service", null],
  ])("the file unit %s is of stack %s", (name, stack) => expect(originalFileUnitStack(name)).toBe(stack));

  it.each<[string, RawEntry[], string[]]>([
    [
      "files, with or without a leading /, sorted",
      [{ path: "usr/local/lib/shop/server.py" }, { path: "/etc/shop/shop.env" }],
      ["/etc/shop/shop.env", "/usr/local/lib/shop/server.py"],
    ],
    [
      "'..' escapes and symlinks are not files it names",
      [
        { path: "../x" },
        { path: "etc/a/../../../y" },
        { path: "etc/l", type: "SymbolicLink", linkpath: "/etc/passwd" },
        { path: "etc/ok" },
      ],
      ["/etc/ok"],
    ],
    ["directories are not files", [{ path: "etc/shop/", type: "Directory" }], []],
  ])("%s", async (_t, entries, want) => {
    const tar = rawTar(entries.map((e) => ({ data: "x", ...e })));
    expect(await originalArchivePaths(b64(tar))).toEqual(want);
  });

  it("a value that is not base64 is refused", async () => {
    await expect(originalArchivePaths(Buffer.from('{"not": "base64"}'))).rejects.toThrow(/not base64/);
  });
});
