/**
 * `houston adopt`: on a fleet cluster deployed by the original Houston 0.3.0, take over the fleet
 * units that belong to a stack of this config dir (recorded in KV fleet/owned as adopted), so that
 * the next deploy of that stack replaces them and, once confirmed, destroys them, instead of
 * running a second copy beside them; and the files the original's archive of each adopted file
 * unit names (recorded per stack in stacks/<stack>/adopted, signed with the signing key, so that a
 * deploy of that stack may replace exactly those on the hosts; shared/stores/adopted.ts). A dry
 * run unless --yes. Units of no stack here stay foreign.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, errorText, InvalidKvDataError } from "../../shared/errors.js";
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import {
  adoptUnits,
  readOwned,
  releaseAdopted as releaseAdoptedOf,
  updateOwned,
  type FleetOwned,
} from "../../shared/stores/fleet-owned.js";
import { deleteAdoptedFiles, putAdoptedFiles } from "../../shared/stores/adopted.js";
import { ARCHIVE_COMPONENT, GLOBAL_STACK } from "../../shared/unit-name.js";
import { ORIGINAL_ARCHIVE_PREFIX, originalArchivePaths, originalFileUnitStack } from "../../shared/original-archive.js";
import type { Manifest } from "../config/manifest.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";

export interface AdoptCandidate {
  name: string;
  stack: string;
}

/**
 * The original's unit name prefixes (before `@VERSION.service`) of each stack of a config dir:
 * global `NAME`, `STACK` for a service, `STACK-NAME` for its other units, `STACK-file-deploy`.
 */
export function originalPrefixes(manifest: Manifest, serviceStacks: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const g of manifest.globalUnits) out.set(g.name, GLOBAL_STACK);
  out.set(`${GLOBAL_STACK}-${ARCHIVE_COMPONENT}`, GLOBAL_STACK);
  const stacks = new Map<string, string[]>();
  for (const [s, refs] of Object.entries(manifest.services))
    stacks.set(
      s,
      refs.map((r) => r.name),
    );
  for (const s of serviceStacks) stacks.set(s, stacks.get(s) ?? []);
  for (const [s, refs] of Object.entries(manifest.standalone))
    stacks.set(
      s,
      refs.map((r) => r.name),
    );
  for (const [s, names] of stacks) {
    if (serviceStacks.includes(s) || Object.hasOwn(manifest.services, s)) out.set(s, s);
    out.set(`${s}-${ARCHIVE_COMPONENT}`, s);
    for (const n of names) out.set(`${s}-${n}`, s);
  }
  return out;
}

/** Which fleet units to adopt (pure): the original's names of this config's stacks, not Houston's already. */
export function adoptCandidates(
  prefixes: ReadonlyMap<string, string>,
  fleetUnits: string[],
  owned: FleetOwned,
): { adopt: AdoptCandidate[]; foreign: string[] } {
  const adopt: AdoptCandidate[] = [];
  const foreign: string[] = [];
  for (const name of [...fleetUnits].sort()) {
    if (owned.units[name] !== undefined || owned.adopted?.[name] !== undefined) continue;
    const m = /^(.+)@[^@/]+\.service$/.exec(name);
    const stack = m?.[1] ? prefixes.get(m[1]) : undefined;
    if (stack) adopt.push({ name, stack });
    else foreign.push(name);
  }
  return { adopt, foreign };
}

/** The files each of the original's file units among `units` wrote, by unit name (its archive in KV). */
async function originalArchives(
  consul: Consul,
  prefixes: ReadonlyMap<string, string>,
  units: string[],
): Promise<Map<string, { stack: string; key: string; paths: string[] }>> {
  const out = new Map<string, { stack: string; key: string; paths: string[] }>();
  for (const name of units) {
    const s = originalFileUnitStack(name);
    const stack = s === null ? undefined : prefixes.get(`${s}-${ARCHIVE_COMPONENT}`);
    if (!stack) continue;
    const key = `${ORIGINAL_ARCHIVE_PREFIX}${name}`;
    const e = await consul.kvGet(key);
    let paths: string[] = [];
    try {
      paths = e ? await originalArchivePaths(e.value) : [];
    } catch (err) {
      throw new InvalidKvDataError(
        key,
        `the original Houston's archive of ${name} cannot be read (${errorText(err)}); nothing adopted`,
      );
    }
    out.set(name, { stack, key, paths });
  }
  return out;
}

function serviceStacksOf(dir: string): string[] {
  const d = join(dir, "units", "service");
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((f) => f.endsWith(".service"))
    .map((f) => f.slice(0, -".service".length));
}

export async function adoptCommand(
  ctx: Context,
  manifest: Manifest,
  env: string,
  apply: boolean,
  json: boolean,
  out: Output,
): Promise<void> {
  if (!ctx.fleet)
    throw new ConfigError(manifest.file, `environments.${env}.fleet is not set: adopt needs the fleet to look at`);
  const prefixes = originalPrefixes(manifest, serviceStacksOf(ctx.dir));
  const units = (await ctx.fleet.units()).map((u) => u.name);
  const archives = await originalArchives(ctx.consul, prefixes, units);
  const filesOf = (adopt: AdoptCandidate[]): Record<string, string[]> => {
    const files: Record<string, string[]> = {};
    for (const a of adopt) {
      const arch = archives.get(a.name);
      if (arch?.paths.length) files[arch.stack] = [...(files[arch.stack] ?? []), ...arch.paths];
    }
    return files;
  };
  const candidates = (owned: FleetOwned): { adopt: AdoptCandidate[]; foreign: string[] } =>
    adoptCandidates(prefixes, units, owned);
  let found = { adopt: [] as AdoptCandidate[], foreign: [] as string[] };
  if (!apply) found = candidates((await readOwned(ctx.consul, ctx.kv)).owned);
  else {
    // the scheduler may write meanwhile: each attempt takes the candidates from its own read
    const change = (owned: FleetOwned): FleetOwned | null => {
      found = candidates(owned);
      return found.adopt.length ? adoptUnits(owned, found.adopt) : null;
    };
    if (!(await updateOwned(ctx.consul, ctx.kv, change, 6)))
      throw new Error(`${ctx.kv.fleetOwned} kept changing; try again`);
    // the files of every adopted unit of each stack (those of an earlier adopt too), written again
    const { owned } = await readOwned(ctx.consul, ctx.kv);
    const all = [...archives.keys()].flatMap((name) => {
      const stack = owned.adopted?.[name];
      return stack === undefined ? [] : [{ name, stack }];
    });
    for (const [stack, paths] of Object.entries(filesOf(all)))
      await putAdoptedFiles(ctx.consul, ctx.kv, stack, paths, ctx.signer);
  }
  const { adopt, foreign } = found;
  if (json) {
    out.print(JSON.stringify({ applied: apply, adopt, foreign, files: filesOf(adopt) }, null, 2));
    return;
  }
  for (const a of adopt) {
    out.info(`${apply ? "Adopted" : "Would adopt"} ${a.name} (stack ${a.stack})`);
    const arch = archives.get(a.name);
    if (!arch) continue;
    if (arch.paths.length === 0)
      out.warn(`${arch.key}: no archive of the original there; files it wrote stay refused to the next deploy`);
    else
      out.info(
        `  ${apply ? "A deploy" : "Would let a deploy"} of ${a.stack} ${apply ? "may now replace" : "replace"} the files of the original's archive ${arch.key}: ${arch.paths.join(", ")}`,
      );
  }
  for (const f of foreign) out.info(`Left alone: ${f} (no stack of this config)`);
  if (adopt.length === 0)
    out.info("Nothing to adopt: no fleet unit under the original Houston's names of these stacks");
  else if (!apply) out.info(`Run again with --yes to adopt ${adopt.length} unit(s)`);
  else out.info("The next deploy of each stack replaces its adopted units and destroys them once it is confirmed");
}

/**
 * After a confirmed deploy of a fleet stack: its adopted units become ordinary Houston units that
 * no spec wants, so the scheduler destroys them. Returns their names.
 */
export async function releaseAdopted(consul: Consul, kv: KvLayout, stack: string): Promise<string[]> {
  let released: string[] = [];
  const written = await updateOwned(
    consul,
    kv,
    (owned) => {
      const r = releaseAdoptedOf(owned, stack);
      released = r?.released ?? [];
      return r?.next ?? null;
    },
    5,
  );
  if (!written) throw new Error(`${kv.fleetOwned} kept changing; the adopted units of ${stack} stay`);
  // the hosts have claimed the original's files: no later deploy takes over any more of them
  await deleteAdoptedFiles(consul, kv, stack);
  return released;
}
