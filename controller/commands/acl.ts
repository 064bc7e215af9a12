/**
 * `houston acl policies` prints Houston's least-privilege policies, one block per policy (or writes
 * one file per policy and form with --out DIR); `houston acl bootstrap-tokens` creates in Consul
 * what is missing — the controller and operator tokens once, and per --node the Houston agent's
 * token and the Consul client agent's token (a node identity) — and prints the new secrets once.
 * A role that already has a token is reported as existing and nothing is created for it, so adding
 * a node later is `bootstrap-tokens --node NEW`; the policies themselves are written again each
 * time (a stack added to the config is granted by running it again).
 * Agents may register only `houston-*` and the services of the stacks the config declares (every
 * stack of the manifest and of units/service/) plus each `--stack NAME`: see declaredStacks.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  createNodeIdentityToken,
  createToken,
  listTokens,
  upsertPolicy,
  type TokenSummary,
} from "../../shared/consul-acl.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { NAME_RE } from "../../shared/unit-name.js";
import { ConfigError, errorText } from "../../shared/errors.js";
import { loadManifest } from "../config/manifest.js";
import { readYamlFile } from "../config/yaml-file.js";
import {
  agentPolicy,
  allPolicies,
  controllerPolicy,
  operatorPolicy,
  rulesHcl,
  rulesJson,
  type Policy,
} from "../acl/policies.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";
import { presentPaths, writeNewFiles } from "./new-files.js";

function checkNodes(nodes: string[]): string[] {
  for (const n of nodes)
    if (!NAME_RE.test(n)) throw new ConfigError("--node", `${JSON.stringify(n)} is not a node name`);
  return nodes;
}

function checkStacks(stacks: string[]): string[] {
  for (const s of stacks)
    if (!NAME_RE.test(s)) throw new ConfigError("--stack", `${JSON.stringify(s)} is not a stack name`);
  return stacks;
}

/**
 * Every stack the config dir can deploy (whose service names agents must be able to register):
 * the manifest's standalone stacks, its services, `global` when it has global units, and every
 * service template in units/service/ (NAME.service, or the stacks a NAME.yaml maps). No manifest:
 * none (only --stack names are granted).
 */
export function declaredStacks(dir: string): string[] {
  if (!existsSync(join(dir, "manifest.yaml"))) return [];
  const m = loadManifest(dir);
  const out = new Set([...Object.keys(m.standalone), ...Object.keys(m.services)]);
  if (m.globalUnits.length) out.add("global");
  const folder = join(dir, "units", "service");
  for (const f of existsSync(folder) ? readdirSync(folder).sort() : []) {
    if (f.endsWith(".service")) out.add(f.slice(0, -".service".length));
    else if (f.endsWith(".yaml")) {
      const y = readYamlFile(join(folder, f), dir);
      if (y.data !== null && typeof y.data === "object" && !Array.isArray(y.data))
        for (const k of Object.keys(y.data)) if (k !== "global") out.add(k);
    }
  }
  return [...out].filter((s) => NAME_RE.test(s)).sort();
}

/** The files `acl policies --out DIR` writes: NAME.hcl and NAME.json per policy. */
export function policyFiles(policies: Policy[]): { file: string; text: string }[] {
  return policies.flatMap((p) => [
    { file: `${p.name}.hcl`, text: `# ${p.name}: ${p.description}\n${rulesHcl(p.rules)}` },
    { file: `${p.name}.json`, text: `${rulesJson(p.rules)}\n` },
  ]);
}

export function aclPoliciesCommand(
  kv: KvLayout,
  nodes: string[],
  stacks: string[],
  json: boolean,
  outDir: string | undefined,
  out: Output,
): void {
  const policies = allPolicies(kv, checkNodes(nodes.length ? nodes : ["NODE"]), checkStacks(stacks));
  if (outDir !== undefined) {
    const files = policyFiles(policies).map((f) => ({ ...f, path: join(outDir, f.file) }));
    let isDir: boolean | null = null;
    try {
      isDir = statSync(outDir).isDirectory();
    } catch {
      // not there yet: made below
    }
    if (isDir === false) throw new ConfigError("--out", `${outDir} exists and is not a directory`);
    // nothing half-written: refuse before writing when any file is there already (a symlink too)
    const taken = new Set(presentPaths(files));
    if (taken.size)
      throw new ConfigError(
        "--out",
        `${outDir} already holds ${files
          .filter((f) => taken.has(f.path))
          .map((f) => f.file)
          .join(", ")}; existing files are not overwritten`,
      );
    let made: string | undefined;
    try {
      made = mkdirSync(outDir, { recursive: true });
    } catch (err) {
      throw new ConfigError("--out", `cannot create ${outDir}: ${errorText(err)}`);
    }
    try {
      writeNewFiles("--out", `the policy files into ${outDir}`, files);
    } catch (err) {
      // the folders this command made go too (innermost first, up to the first one made)
      if (made !== undefined)
        for (let d = resolve(outDir); ; d = dirname(d)) {
          rmdirSync(d);
          if (d === resolve(made) || d === dirname(d)) break;
        }
      throw err;
    }
    for (const p of policies)
      out.info(`consul acl policy create -name ${p.name} -rules @${join(outDir, `${p.name}.hcl`)}`);
    if (json) out.print(JSON.stringify({ files: files.map((f) => join(outDir, f.file)) }, null, 2));
    return;
  }
  if (json) {
    out.print(
      JSON.stringify(
        policies.map((p) => ({ Name: p.name, Description: p.description, Rules: rulesJson(p.rules) })),
        null,
        2,
      ),
    );
    return;
  }
  const blocks = policies.flatMap((p) => [
    `##### ${p.name}.hcl — ${p.description}\n# consul acl policy create -name ${p.name} -rules @${p.name}.hcl\n${rulesHcl(p.rules)}`,
    `##### ${p.name}.json — the same rules as Consul's JSON\n${rulesJson(p.rules)}\n`,
  ]);
  out.print(
    `# One block per file; each starts with a "##### FILE" line. \`--out DIR\` writes them as files.\n\n${blocks.join("\n")}`,
  );
}

interface Role {
  role: string;
  /** the policy the token carries, or null for a Consul client agent's node-identity token */
  policy: Policy | null;
  node?: string;
}

function tokenFor(role: Role, tokens: TokenSummary[]): TokenSummary | undefined {
  if (role.policy) {
    const name = role.policy.name;
    return tokens.find((t) => t.policies.includes(name));
  }
  return tokens.find((t) => role.node !== undefined && t.nodeIdentities.includes(role.node));
}

export async function aclBootstrapCommand(
  ctx: Context,
  nodes: string[],
  stacks: string[],
  datacenter: string | undefined,
  json: boolean,
  out: Output,
): Promise<void> {
  checkNodes(nodes);
  checkStacks(stacks);
  const roles: Role[] = [
    { role: "controller", policy: controllerPolicy(ctx.kv) },
    { role: "operator", policy: operatorPolicy(ctx.kv) },
    ...nodes.flatMap((n) => [
      { role: `agent-${n}`, policy: agentPolicy(ctx.kv, n, stacks), node: n },
      { role: `consul-agent-${n}`, policy: null, node: n },
    ]),
  ];
  const existing = await listTokens(ctx.consul);
  const dc = roles.some((r) => r.policy === null && !tokenFor(r, existing))
    ? (datacenter ?? (await ctx.consul.agentSelf()).datacenter)
    : "";
  const tokens: { role: string; policy: string | null; accessorId: string; secretId: string }[] = [];
  const kept: { role: string; accessorId: string }[] = [];
  for (const r of roles) {
    const had = tokenFor(r, existing);
    if (had && r.policy) {
      // the token stays; its policy is brought up to date (e.g. a stack added to the config)
      const p = r.policy;
      await upsertPolicy(ctx.consul, { name: p.name, description: p.description, rules: rulesHcl(p.rules) });
    }
    if (had) {
      kept.push({ role: r.role, accessorId: had.accessorId });
      out.info(`${r.role}: a token exists already (accessor ${had.accessorId}); nothing created`);
      continue;
    }
    if (r.policy) {
      const p = r.policy;
      await upsertPolicy(ctx.consul, { name: p.name, description: p.description, rules: rulesHcl(p.rules) });
      const t = await createToken(ctx.consul, `Houston: ${p.description}`, [p.name]);
      tokens.push({ role: r.role, policy: p.name, ...t });
      out.info(`${r.role}: policy ${p.name} and a token for it are in Consul`);
    } else {
      const node = r.node ?? "";
      const t = await createNodeIdentityToken(ctx.consul, `Consul client agent on ${node}`, node, dc);
      tokens.push({ role: r.role, policy: null, ...t });
      out.info(`${r.role}: a token with the node identity ${node} (datacenter ${dc}) is in Consul`);
    }
  }
  if (json) out.print(JSON.stringify({ tokens, existing: kept }, null, 2));
  else if (tokens.length) out.print(tokens.map((t) => `${t.role.padEnd(28)} ${t.secretId}`).join("\n"));
}
