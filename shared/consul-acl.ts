/**
 * Consul ≥ 1.4 ACL policies and tokens: endpoints the npm `consul` package does not cover (it
 * knows only the legacy ACL API), called through the same edge and validated the same way.
 */
import { z } from "zod";
import type { Consul } from "./consul.js";
import type { RawResponse } from "./consul-transport.js";
import { answerError } from "./consul-wire.js";

const PolicyRow = z.object({ ID: z.string(), Name: z.string() });
const TokenRow = z.object({ AccessorID: z.string(), SecretID: z.string() });

/** A 200, or the error the answer means (ACLs, not Consul, …), naming the address. */
function check(consul: Consul, what: string, res: RawResponse, needs: string): void {
  if (res.status !== 200) throw answerError(consul.addr, what, res, needs);
}

/**
 * Creates the policy, or updates the one of that name; returns its ID. (Consul 1.8 answers a read
 * of a missing policy by name with 403 "ACL not found", so the list is searched instead.)
 */
export async function upsertPolicy(
  consul: Consul,
  p: { name: string; description: string; rules: string },
): Promise<string> {
  const list = await consul.request("GET", "/v1/acl/policies");
  check(consul, "list ACL policies", list, "acl:read (a management token)");
  const found = consul.json(z.array(PolicyRow), list.body, "policy list").find((x) => x.Name === p.name);
  const body = JSON.stringify({ Name: p.name, Description: p.description, Rules: p.rules });
  if (found) {
    const res = await consul.request("PUT", `/v1/acl/policy/${encodeURIComponent(found.ID)}`, { body });
    check(consul, `update ACL policy ${p.name}`, res, "acl:write (a management token)");
    return found.ID;
  }
  const res = await consul.request("PUT", "/v1/acl/policy", { body });
  check(consul, `create ACL policy ${p.name}`, res, "acl:write (a management token)");
  return consul.json(PolicyRow, res.body, "policy create").ID;
}

export async function createToken(
  consul: Consul,
  description: string,
  policies: string[],
): Promise<{ accessorId: string; secretId: string }> {
  const res = await consul.request("PUT", "/v1/acl/token", {
    body: JSON.stringify({ Description: description, Policies: policies.map((Name) => ({ Name })) }),
  });
  check(consul, `create ACL token (${description})`, res, "acl:write (a management token)");
  const t = consul.json(TokenRow, res.body, "token create");
  return { accessorId: t.AccessorID, secretId: t.SecretID };
}

const TokenListRow = z.object({
  AccessorID: z.string(),
  Description: z.string().optional(),
  Policies: z.array(z.object({ Name: z.string() })).nullish(),
  NodeIdentities: z.array(z.object({ NodeName: z.string(), Datacenter: z.string() })).nullish(),
});
export interface TokenSummary {
  accessorId: string;
  description: string;
  policies: string[];
  nodeIdentities: string[];
}

/** Every token's accessor, description, policy names and node identities (no secrets). */
export async function listTokens(consul: Consul): Promise<TokenSummary[]> {
  const res = await consul.request("GET", "/v1/acl/tokens");
  check(consul, "list ACL tokens", res, "acl:read (a management token)");
  return consul.json(z.array(TokenListRow), res.body, "token list").map((t) => ({
    accessorId: t.AccessorID,
    description: t.Description ?? "",
    policies: (t.Policies ?? []).map((p) => p.Name),
    nodeIdentities: (t.NodeIdentities ?? []).map((n) => n.NodeName),
  }));
}

/** A token for a Consul client agent: the node identity of `node` (node:write on it, service reads). */
export async function createNodeIdentityToken(
  consul: Consul,
  description: string,
  node: string,
  datacenter: string,
): Promise<{ accessorId: string; secretId: string }> {
  const res = await consul.request("PUT", "/v1/acl/token", {
    body: JSON.stringify({ Description: description, NodeIdentities: [{ NodeName: node, Datacenter: datacenter }] }),
  });
  check(consul, `create ACL token (${description})`, res, "acl:write (a management token)");
  const t = consul.json(TokenRow, res.body, "token create");
  return { accessorId: t.AccessorID, secretId: t.SecretID };
}
