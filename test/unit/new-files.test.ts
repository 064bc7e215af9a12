/**
 * `keygen` and `acl policies --out` write new files all or nothing: an existing path (a file, a
 * folder, a symlink even to nowhere) refuses the lot with exit 2 naming --out, nothing is written
 * through a symlink, a failure half-way leaves nothing behind, and a prefix that names a folder is
 * refused rather than making hidden `.key` files.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { aclPoliciesCommand } from "../../controller/commands/acl.js";
import { writeSigningKeys } from "../../controller/commands/keygen.js";
import { writeNewFiles } from "../../controller/commands/new-files.js";
import { quiet } from "../helpers/output.js";
import { ConfigError } from "../../shared/errors.js";
import { KvLayout } from "../../shared/kv-layout.js";

const tmp = (): string => mkdtempSync(join(tmpdir(), "houston-newfiles-"));
const policies = (out: string): void => aclPoliciesCommand(new KvLayout(), [], [], false, out, quiet);

describe("keygen", () => {
  it("a dangling .pub symlink refuses the pair and leaves no .key behind", () => {
    const dir = tmp();
    symlinkSync(join(dir, "nowhere"), join(dir, "k.pub"));
    expect(() => writeSigningKeys(join(dir, "k"))).toThrow(/--out: .*k\.pub already exists/);
    expect(readdirSync(dir).sort()).toEqual(["k.pub"]);
    expect(existsSync(join(dir, "nowhere"))).toBe(false);
  });

  it("a prefix naming a folder is refused (no hidden .key/.pub)", () => {
    const dir = tmp();
    for (const p of [`${dir}/`, ".", "..", "a/.."])
      expect(() => writeSigningKeys(p)).toThrow(/--out: .* names a directory, not a file prefix/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a folder of the same name beside the prefix is fine (DIR.key, DIR.pub)", () => {
    const dir = tmp();
    mkdirSync(join(dir, "keys"));
    writeSigningKeys(join(dir, "keys"));
    expect(readdirSync(dir).sort()).toEqual(["keys", "keys.key", "keys.pub"]);
  });
});

describe("acl policies --out", () => {
  it("an existing file as --out is a usage error naming it, not a stack trace", () => {
    const file = join(tmp(), "f");
    writeFileSync(file, "x");
    expect(() => policies(file)).toThrow(ConfigError);
    expect(() => policies(file)).toThrow(/--out: .*\/f exists and is not a directory/);
  });

  it("a dangling symlink among the files refuses the lot; nothing is written through it", () => {
    const dir = tmp();
    const target = join(tmp(), "escaped.hcl");
    symlinkSync(target, join(dir, "houston-operator.hcl"));
    expect(() => policies(dir)).toThrow(/--out: .* already holds houston-operator\.hcl/);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(dir)).toEqual(["houston-operator.hcl"]);
  });

  it("writes every file into a new nested folder", () => {
    const out = join(tmp(), "a", "b");
    policies(out);
    expect(readdirSync(out)).toHaveLength(6);
  });
});

describe("writeNewFiles", () => {
  it("a failure half-way removes what it wrote and names the flag", () => {
    const dir = tmp();
    const files = [
      { path: join(dir, "one"), text: "1" },
      { path: join(dir, "missing", "two"), text: "2" },
    ];
    expect(() => writeNewFiles("--out", "the files", files)).toThrow(
      /--out: cannot write the files: .*ENOENT.*; nothing was written/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });
});
