/**
 * Least-privilege Consul ACL policies for Houston (pure): who may write what under the KV prefix.
 *  - controller: writes specs (and signatures), archives, locks, history and fleet/ (`houston
 *    adopt`); reads the rest of the prefix; holds lock sessions; reads the catalog and health to
 *    follow rollouts.
 *  - agent on node N: reads specs (with their signatures and each stack's latest record, the
 *    signed tombstone of a removal: all under stacks/, nothing wider), archives and the other
 *    agents' records; writes only status/N/ and agents/N, and (as the scheduler, when it holds
 *    the role) scheduler/, placements/ and fleet/;
 *    registers, on its own Consul agent, only the services Houston registers: `houston-*` (its
 *    own houston-agent and the per-stack houston-<stack>) and, per stack named when the policy is
 *    made, the names that stack may declare (`<stack>` and `<stack>-*`, shared/spec.ts
 *    serviceNameProblem) — never a foreign name such as `vault`; reads its own agent's identity,
 *    the health of every node (machines that go away) and every session (the scheduler role's
 *    holder must be bound to its node's health: agent/scheduler-role.ts); holds a session on its
 *    own node.
 *  - operator (read-only): plan, status, history, nodes.
 * Rendered as HCL (for `consul acl policy create -rules @file`) and as Consul's JSON rules.
 */
import { KvLayout } from "../../shared/kv-layout.js";

type Access = "read" | "write";
/** resource kind → name → access; "" as a *_prefix name means everything */
export type Rules = Partial<
  Record<
    | "key"
    | "key_prefix"
    | "session"
    | "session_prefix"
    | "node"
    | "node_prefix"
    | "service"
    | "service_prefix"
    | "agent",
    Record<string, Access>
  >
>;

export interface Policy {
  name: string;
  description: string;
  rules: Rules;
}

export function controllerPolicy(kv: KvLayout): Policy {
  return {
    name: "houston-controller",
    description: "Houston controller: deploy, remove, rollback (writes specs, archives, locks, history)",
    rules: {
      key_prefix: {
        [kv.prefix]: "read",
        [kv.stacks]: "write",
        [kv.archives]: "write",
        [`${kv.prefix}locks/`]: "write",
        [`${kv.prefix}history/`]: "write",
        // houston adopt records the original Houston's fleet units as Houston's
        [kv.fleet]: "write",
      },
      session_prefix: { "": "write" },
      node_prefix: { "": "read" },
      service_prefix: { "": "read" },
    },
  };
}

/**
 * The services an agent may register: `houston-*` and, per stack, the names the controller lets
 * that stack declare. Everything else (a passing `vault`) is refused by Consul.
 */
export function agentServiceRules(stacks: readonly string[]): Pick<Rules, "service" | "service_prefix"> {
  const sorted = [...new Set(stacks)].sort();
  return {
    service: Object.fromEntries(sorted.map((s) => [s, "write" as const])),
    service_prefix: {
      // discovery and health of every service (the scheduler watches houston-agent; reports read checks)
      "": "read",
      "houston-": "write",
      ...Object.fromEntries(sorted.map((s) => [`${s}-`, "write" as const])),
    },
  };
}

export function agentPolicy(kv: KvLayout, node: string, stacks: readonly string[]): Policy {
  return {
    name: `houston-agent-${node}`,
    description: `Houston agent on node ${node}: reads specs and archives, reports for ${node} only`,
    rules: {
      key_prefix: {
        [kv.stacks]: "read",
        [kv.archives]: "read",
        [kv.agents]: "read",
        [kv.nodeStatus(node)]: "write",
        // the scheduler role (one agent at a time, by a lock): a placement can only choose among
        // the machines a signed spec admits, and every agent re-checks that
        [kv.scheduler]: "write",
        [kv.placements]: "write",
        [kv.fleet]: "write",
      },
      key: { [kv.agent(node)]: "write" },
      // services are registered through the node's own Consul agent (/v1/agent/service/register)
      ...agentServiceRules(stacks),
      node: { [node]: "read" },
      node_prefix: { "": "read" },
      session: { [node]: "write" },
      session_prefix: { "": "read" },
      agent: { [node]: "read" },
    },
  };
}

export function operatorPolicy(kv: KvLayout): Policy {
  return {
    name: "houston-operator",
    description: "Houston read-only operator: plan, status, history, nodes",
    rules: {
      key_prefix: { [kv.prefix]: "read" },
      node_prefix: { "": "read" },
      service_prefix: { "": "read" },
      // `nodes` reads the scheduler role's session (is it bound to its holder's health?)
      session_prefix: { "": "read" },
    },
  };
}

export function allPolicies(kv: KvLayout, nodes: string[], stacks: readonly string[]): Policy[] {
  return [controllerPolicy(kv), operatorPolicy(kv), ...nodes.map((n) => agentPolicy(kv, n, stacks))];
}

export function rulesHcl(rules: Rules): string {
  const lines: string[] = [];
  for (const [kind, entries] of Object.entries(rules)) {
    for (const [name, access] of Object.entries(entries ?? {}))
      lines.push(`${kind} ${JSON.stringify(name)} {\n  policy = ${JSON.stringify(access)}\n}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Consul's JSON form of the same rules (accepted wherever HCL is). */
export function rulesJson(rules: Rules): string {
  const out: Record<string, Record<string, { policy: Access }>> = {};
  for (const [kind, entries] of Object.entries(rules)) {
    out[kind] = Object.fromEntries(Object.entries(entries ?? {}).map(([name, access]) => [name, { policy: access }]));
  }
  return JSON.stringify(out, null, 2);
}
