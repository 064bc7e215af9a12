/**
 * The agent bundle's patch of dbus-next's 64-bit reader (scripts/dbus-next-patch.mjs): the patched
 * DBusBuffer reads the same BigInt as the original for edge values, signed and unsigned.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { runInThisContext } from "node:vm";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a build script (plain .mjs, no types)
import { patchDbusBuffer as patchUntyped } from "../../scripts/dbus-next-patch.mjs";

const patchDbusBuffer = patchUntyped as (source: string) => string;

const require = createRequire(import.meta.url);
const file = require.resolve("dbus-next/lib/dbus-buffer.js");

interface Reader {
  readSimpleType(t: string): unknown;
}
type ReaderClass = new (buffer: Buffer, start: number, endian: number) => Reader;
// systemd on little-endian machines sends little-endian messages
const LE = (require("dbus-next/lib/constants.js") as { endianness: { le: number } }).endianness.le;

function load(source: string): ReaderClass {
  const mod = { exports: {} as unknown };
  const fn = runInThisContext(`(function (exports, require, module, __filename, __dirname) {${source}\n})`) as (
    ...a: unknown[]
  ) => void;
  fn(mod.exports, createRequire(file), mod, file, dirname(file));
  return mod.exports as ReaderClass;
}

const original = load(readFileSync(file, "utf8"));
const patched = load(patchDbusBuffer(readFileSync(file, "utf8")));

describe("dbus-next's 64-bit reader, patched for the agent bundle", () => {
  const values = [0n, 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 7n, 1732700000123456n, 2n ** 64n - 1n];
  for (const v of values) {
    it(`reads ${v} as the original does (t and x)`, () => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      for (const t of ["t", "x"]) {
        const want = new original(b, 0, LE).readSimpleType(t);
        expect(new patched(b, 0, LE).readSimpleType(t)).toBe(want);
      }
      expect(new patched(b, 0, LE).readSimpleType("t")).toBe(v);
      expect(new patched(b, 0, LE).readSimpleType("x")).toBe(BigInt.asIntN(64, v));
    });
  }
  it("refuses to build when dbus-next's code is not what it patches", () => {
    expect(() => patchDbusBuffer("module.exports = 1")).toThrow(/dbus-next's dbus-buffer.js changed/);
  });
  it("is in the agent bundle", () => {
    // the agent bundle is built without whitespace
    const bundle = readFileSync(join(import.meta.dirname, "..", "..", "dist", "houston-agent.js"), "utf8");
    expect(bundle.replace(/\s+/g, "")).toContain("BigInt.asIntN(64,BigInt(word1>>>0)<<32n|BigInt(word0>>>0))");
  });
});
