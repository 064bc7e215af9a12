/**
 * ACLs in the test fleet: default deny, the management token as the servers' master and the
 * clients' agent token, and one least-privilege token per host agent, as `houston acl
 * bootstrap-tokens` makes them (controller/acl/policies.ts).
 */
import type { Consul } from "../../shared/consul.js";
import { createToken, upsertPolicy } from "../../shared/consul-acl.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { agentPolicy, rulesHcl } from "../../controller/acl/policies.js";

/** A Consul server's ACL settings (HCL) with `master` as its management token. */
export function serverAclHcl(master: string): string {
  return `acl { enabled = true default_policy = "deny" enable_token_persistence = true tokens { master = "${master}" agent = "${master}" } }`;
}

/** A host's Consul client ACL settings (HCL). */
export function clientAclHcl(master: string): string {
  return `acl { enabled = true default_policy = "deny" tokens { agent = "${master}" } }`;
}

/**
 * One token per node with that node's agent policy (what `houston acl bootstrap-tokens` makes),
 * allowed to register the services of `stacks` besides houston-*.
 */
export async function agentTokens(
  consul: Consul,
  kv: KvLayout,
  nodes: string[],
  stacks: string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const node of nodes) {
    const p = agentPolicy(kv, node, stacks);
    await upsertPolicy(consul, { name: p.name, description: p.description, rules: rulesHcl(p.rules) });
    out.set(node, (await createToken(consul, `test agent ${node}`, [p.name])).secretId);
  }
  return out;
}
