/**
 * The store of agent records, agents/<node> (each agent writes its own: metadata, version, machine
 * ID, trusted keys), and their health: the houston-agent service's checks in Consul, by node.
 * agentViews joins the two, once, for the controller's hosts and the scheduler's machines.
 * Records are keyed by the node of their KV key, never by their body (an agent token may write
 * only agents/<its node>): a record naming another node is ignored. Health is keyed by the Consul
 * node of the check. An ignored or unreadable record leaves its host out and is returned, naming
 * its key, for the caller to warn about.
 */
import type { Consul, HealthEntry, KvEntry } from "../consul.js";
import { worstStatus } from "../consul.js";
import type { KvLayout } from "../kv-layout.js";
import { ordinal } from "../order.js";
import type { ObservedMachine } from "../schedule.js";
import { AGENT_SERVICE, AgentRecordSchema, type AgentRecord } from "../spec.js";
import { decodeEach, type Unreadable } from "./document.js";

export interface AgentList {
  /** node → its record */
  records: Map<string, AgentRecord>;
  ignored: Unreadable[];
}

/** Every readable record of a listing of agents/, by its key's node. */
export function decodeAgents(entries: Pick<KvEntry, "key" | "value">[], kv: KvLayout): AgentList {
  const records = new Map<string, AgentRecord>();
  const ignored = decodeEach(entries, kv.agents, AgentRecordSchema, (r, key) => {
    const node = kv.nodeOfAgentKey(key);
    if (!node) return "not an agents/<node> key; ignored";
    if (r.node !== node) return `the record names node ${r.node}, but its key is ${node}'s; ignored`;
    records.set(node, r);
    return null;
  });
  return { records, ignored };
}

export async function listAgents(consul: Consul, kv: KvLayout): Promise<AgentList> {
  return decodeAgents(await consul.kvList(kv.agents), kv);
}

/** Writes the agent's own record at agents/<node>. */
export async function putAgent(consul: Consul, kv: KvLayout, record: AgentRecord): Promise<void> {
  await consul.kvPut(kv.agent(record.node), JSON.stringify(AgentRecordSchema.parse(record)));
}

/** node (the Consul node of the check) → the houston-agent service's worst check status */
export function healthByNode(entries: HealthEntry[]): Map<string, string> {
  return new Map(entries.map((e) => [e.Node.Node, worstStatus(e)]));
}

export async function readAgentHealth(consul: Consul): Promise<Map<string, string>> {
  return healthByNode((await consul.healthService(AGENT_SERVICE)).entries);
}

/** Each record with its agent's health (`missing` when Consul has no houston-agent on that node). */
export function agentViews(
  records: ReadonlyMap<string, AgentRecord>,
  health: ReadonlyMap<string, string>,
): ObservedMachine[] {
  return [...records].map(([node, r]) => ({
    node,
    meta: r.meta,
    ...(r.machineId ? { machineId: r.machineId } : {}),
    agent: health.get(node) ?? "missing",
  }));
}

/** The hosts with an agent Consul knows: records joined with health, by node name. */
export async function listHosts(consul: Consul, kv: KvLayout): Promise<ObservedMachine[]> {
  const [{ records }, health] = await Promise.all([listAgents(consul, kv), readAgentHealth(consul)]);
  return agentViews(records, health)
    .filter((h) => health.has(h.node))
    .sort((a, b) => ordinal(a.node, b.node));
}
