/**
 * Applies a Butane (fcos) config to a test host's root as Ignition would at first boot, and no
 * more: storage.directories, storage.files (inline, or local from the files dir as
 * `butane --files-dir` embeds them), storage.trees, systemd.units (written; the enabled ones are
 * then `systemctl enable --now`-ed inside the running host, the manual path of docs/hosts.md).
 * Anything else in the config (users, links; remote sources when applied) is refused, so a test
 * cannot pass on something this does not apply.
 */
import { chmodSync, cpSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";

const Mode = z.number().int().min(0).max(0o7777);
const ButaneSchema = z
  .object({
    variant: z.literal("fcos"),
    version: z.literal("1.5.0"),
    storage: z
      .object({
        directories: z.array(z.object({ path: z.string().startsWith("/"), mode: Mode }).strict()).default([]),
        files: z
          .array(
            z
              .object({
                path: z.string().startsWith("/"),
                mode: Mode,
                overwrite: z.boolean().optional(),
                contents: z.union([
                  z.object({ inline: z.string() }).strict(),
                  z.object({ local: z.string() }).strict(),
                  z
                    .object({
                      source: z.string().url(),
                      verification: z.object({ hash: z.string().regex(/^sha512-[0-9a-f]{128}$/) }).strict(),
                    })
                    .strict(),
                ]),
              })
              .strict(),
          )
          .default([]),
        trees: z.array(z.object({ local: z.string(), path: z.string().startsWith("/") }).strict()).default([]),
      })
      .strict(),
    systemd: z.object({
      units: z.array(z.object({ name: z.string(), enabled: z.boolean(), contents: z.string() }).strict()),
    }),
  })
  .strict();

export type ButaneConfig = z.infer<typeof ButaneSchema>;

/** The config checked against the part of Butane's fcos 1.5.0 schema Houston uses (unknown keys fail). */
export function parseButane(config: unknown): ButaneConfig {
  return ButaneSchema.parse(config);
}

/** Writes the config's files into `root`; returns the units to enable (in the config's order). */
export function applyButane(config: unknown, root: string, filesDir: string): string[] {
  const c = parseButane(config);
  const at = (p: string) => join(root, p);
  for (const d of c.storage.directories) {
    mkdirSync(at(d.path), { recursive: true });
    chmodSync(at(d.path), d.mode);
  }
  for (const f of c.storage.files) {
    mkdirSync(dirname(at(f.path)), { recursive: true });
    if ("inline" in f.contents) writeFileSync(at(f.path), f.contents.inline);
    else if ("local" in f.contents) cpSync(join(filesDir, f.contents.local), at(f.path), { dereference: true });
    else throw new Error(`${f.path}: a remote source (${f.contents.source}) is not fetched in tests`);
    chmodSync(at(f.path), f.mode);
  }
  for (const t of c.storage.trees) cpSync(join(filesDir, t.local), at(t.path), { recursive: true, dereference: true });
  const units = join(root, "etc", "systemd", "system");
  mkdirSync(units, { recursive: true });
  for (const u of c.systemd.units) writeFileSync(join(units, u.name), u.contents);
  return c.systemd.units.filter((u) => u.enabled).map((u) => u.name);
}
