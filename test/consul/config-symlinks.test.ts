/**
 * A config directory's files are read only from inside it: a unit file, a files/*.yaml or the
 * manifest that is a symlink leaving the directory (to an INI credentials file, say) is refused
 * by `plan` and by a deployment, naming the link and its target, exit 2, nothing sent to Consul
 * (the address given is closed: anything that got that far would be exit 3). Links that stay
 * inside the directory keep working. A link that leads nowhere (or loops), and a file where a
 * folder is looked in, are errors naming them, not "no such file": a stack's files would be
 * skipped, or a unit taken from the next folder.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configDir, houston } from "../helpers/cli.js";

const CLOSED = "http://127.0.0.1:1";
const base = {
  "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web: [app:1]\n",
  "units/shared/app.service": "[Service]\nExecStart=/bin/true\n",
};

function secret(): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-secret-"));
  const file = join(dir, "credentials.ini");
  writeFileSync(file, "[default]\naws_secret_access_key = hunter2\n");
  return file;
}

/** replaces `rel` in the config dir with a symlink to `target` */
function link(dir: string, rel: string, target: string): string {
  rmSync(join(dir, rel), { force: true });
  mkdirSync(join(dir, rel, ".."), { recursive: true });
  symlinkSync(target, join(dir, rel));
  return join(dir, rel);
}

describe("symlinks out of the config directory are refused", () => {
  for (const rel of ["units/shared/app.service", "files/standalone/web.yaml", "manifest.yaml"]) {
    for (const args of [
      ["plan", "standalone", "web"],
      ["standalone", "web"],
    ]) {
      it(`${rel} linked outside, houston ${args.join(" ")}`, async () => {
        const dir = configDir(base);
        const target = secret();
        const at = link(dir, rel, target);
        const r = await houston(CLOSED, dir, ...args);
        expect(r.stderr).toContain(`${at}: a symlink to ${target}`);
        expect(r.stderr).toMatch(/, outside the config directory .*: refusing to read it/);
        expect(r.stderr).not.toMatch(/hunter2|\n\s+at |unreachable/);
        expect(r.stdout).not.toMatch(/hunter2/);
        expect(r.code, r.stderr).toBe(2);
      });
    }
  }

  it("a linked folder that leaves the directory is named as the link", async () => {
    const dir = configDir(base);
    const outside = mkdtempSync(join(tmpdir(), "houston-units-"));
    mkdirSync(join(outside, "shared"));
    renameSync(join(dir, "units/shared/app.service"), join(outside, "shared/app.service"));
    rmSync(join(dir, "units"), { recursive: true });
    symlinkSync(outside, join(dir, "units"));
    const r = await houston(CLOSED, dir, "plan", "standalone", "web");
    expect(r.stderr).toContain(`${join(dir, "units")}: a symlink to ${outside}`);
    expect(r.code, r.stderr).toBe(2);
  });

  it("links that stay inside the directory keep working", async () => {
    const dir = configDir({ ...base, "units/real/app.service": "[Service]\nExecStart=/bin/true\n" });
    link(dir, "units/shared/app.service", "../real/app.service");
    const r = await houston(CLOSED, dir, "--json", "plan", "standalone", "web");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("web-app@1.service");
  });

  it("a files/*.yaml linked to nowhere is an error, not a stack without files", async () => {
    const dir = configDir({ ...base, "files/standalone/web.yaml": "- {path: /a, content: x}\n" });
    const at = link(dir, "files/standalone/web.yaml", "gone.yaml");
    const r = await houston(CLOSED, dir, "plan", "standalone", "web");
    expect(r.stderr).toContain(`${at}: a symlink to gone.yaml, which does not exist`);
    expect(r.code, r.stderr).toBe(2);
  });

  it("files/standalone as a file is named, not taken as no files", async () => {
    const dir = configDir({ ...base, "files/standalone": "not a folder\n" });
    const r = await houston(CLOSED, dir, "plan", "standalone", "web");
    expect(r.stderr).toContain(`${join(dir, "files/standalone")}: is a file, not a directory`);
    expect(r.code, r.stderr).toBe(2);
  });

  it("a unit linked to nowhere is named, not looked up in the next folder", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nglobal-units: [app:1]\n",
      "units/shared/app.service": "[Service]\nExecStart=/bin/shared\n",
    });
    const at = link(dir, "units/global/app.service", "gone.service");
    const r = await houston(CLOSED, dir, "plan", "global");
    expect(r.stderr).toContain(`${at}: a symlink to gone.service, which does not exist`);
    expect(r.code, r.stderr).toBe(2);
  });

  it("a unit linked to itself (a loop) says so", async () => {
    const dir = configDir(base);
    const at = link(dir, "units/shared/app.service", "app.service");
    const r = await houston(CLOSED, dir, "plan", "standalone", "web");
    expect(r.stderr).toContain(`${at}: a symlink loop`);
    expect(r.code, r.stderr).toBe(2);
  });
});
