/**
 * `houston acl policies` prints Houston's least-privilege policies (HCL and JSON);
 * `houston acl bootstrap-tokens` creates them in Consul with one token per role (needs a
 * management token) and prints the tokens' secrets once.
 */
import { createToken, upsertPolicy } from "../../shared/consul-acl.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { NAME_RE } from "../../shared/unit-name.js";
import { ConfigError } from "../../shared/errors.js";
import { allPolicies, rulesHcl, rulesJson } from "../acl/policies.js";
import type { Context } from "../context.js";
import type { Output } from "../output.js";

function checkNodes(nodes: string[]): string[] {
  for (const n of nodes)
    if (!NAME_RE.test(n)) throw new ConfigError("--node", `${JSON.stringify(n)} is not a node name`);
  return nodes;
}

export function aclPoliciesCommand(kv: KvLayout, nodes: string[], json: boolean, out: Output): void {
  const policies = allPolicies(kv, checkNodes(nodes.length ? nodes : ["NODE"]));
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
  for (const p of policies) {
    out.print(
      `# ${p.name}: ${p.description}\n# consul acl policy create -name ${p.name} -rules @${p.name}.hcl\n${rulesHcl(p.rules)}`,
    );
    out.print(`# the same as JSON rules\n${rulesJson(p.rules)}\n`);
  }
}

export async function aclBootstrapCommand(ctx: Context, nodes: string[], json: boolean, out: Output): Promise<void> {
  const tokens: { role: string; policy: string; accessorId: string; secretId: string }[] = [];
  for (const p of allPolicies(ctx.kv, checkNodes(nodes))) {
    await upsertPolicy(ctx.consul, { name: p.name, description: p.description, rules: rulesHcl(p.rules) });
    const t = await createToken(ctx.consul, `Houston: ${p.description}`, [p.name]);
    tokens.push({ role: p.name.replace(/^houston-/, ""), policy: p.name, ...t });
    out.info(`Policy ${p.name} and a token for it are in Consul`);
  }
  if (json) out.print(JSON.stringify({ tokens }, null, 2));
  else out.print(tokens.map((t) => `${t.role.padEnd(24)} ${t.secretId}`).join("\n"));
}
