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
 * Consul 1.8 answers ACL requests with 500 "The ACL system is currently in legacy mode" for a
 * moment after its leader is elected, until it has checked that every server can do the new ACLs.
 */
async function untilAclsReady(consul: Consul): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await consul.request("GET", "/v1/acl/policies");
    if (!/legacy mode/.test(res.body.toString())) return;
    if (Date.now() > deadline) throw new Error("Consul's ACL system stayed in legacy mode for 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One token per node with that node's agent policy (what `houston acl bootstrap-tokens` makes). */
export async function agentTokens(consul: Consul, kv: KvLayout, nodes: string[]): Promise<Map<string, string>> {
  await untilAclsReady(consul);
  const out = new Map<string, string>();
  for (const node of nodes) {
    const p = agentPolicy(kv, node);
    await upsertPolicy(consul, { name: p.name, description: p.description, rules: rulesHcl(p.rules) });
    out.set(node, (await createToken(consul, `test agent ${node}`, [p.name])).secretId);
  }
  return out;
}
