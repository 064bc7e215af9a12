/**
 * The KV layout, in one place. Prefix default `houston/`.
 *   stacks/<stack>/spec               desired stack spec (StackSpec JSON)
 *   stacks/<stack>/signature          the controller's signature of that spec (SpecSignature JSON)
 *   stacks/<stack>/latest             the latest generation the controller wrote, live or removed
 *                                     (the signed tombstone), signed when signing is on (LatestRecord JSON)
 *   stacks/<stack>/adopted            the original Houston's files a deploy of the stack may replace
 *                                     (houston adopt), signed when signing is on (AdoptedFiles JSON)
 *   archives/<sha256>/meta            ArchiveMeta JSON
 *   archives/<sha256>/<n>             chunk n (raw bytes, ≤ 512 KiB), n = 0..chunks-1, zero-padded
 *   status/<node>/<stack>             agent report (StatusReport JSON)
 *   agents/<node>                     agent record: node metadata, version (AgentRecord JSON)
 *   locks/<stack>                     deploy lock, held by a Consul session
 *   history/<stack>/<generation>      deployment record (HistoryRecord JSON), zero-padded
 *   placements/<stack>                where the scheduler put the stack's units (PlacementDoc JSON)
 *   scheduler/leader                  the scheduler role, held by one agent's Consul session
 *   fleet/owned                       the fleet units Houston created (stack by unit), fleet-scheduled stacks
 */
import { ConfigError } from "./errors.js";
import { NAME_RE } from "./unit-name.js";

export const DEFAULT_PREFIX = "houston/";

export class KvLayout {
  readonly prefix: string;
  constructor(prefix: string = DEFAULT_PREFIX) {
    this.prefix = prefix.endsWith("/") ? prefix : `${prefix}/`;
  }
  get stacks(): string {
    return `${this.prefix}stacks/`;
  }
  spec(stack: string): string {
    return `${this.stacks}${checkName(stack)}/spec`;
  }
  signature(stack: string): string {
    return `${this.stacks}${checkName(stack)}/signature`;
  }
  latest(stack: string): string {
    return `${this.stacks}${checkName(stack)}/latest`;
  }
  /** the files of the original Houston a deploy of the stack may replace (`houston adopt`; controller-written) */
  adopted(stack: string): string {
    return `${this.stacks}${checkName(stack)}/adopted`;
  }
  /** stack name of a spec key, or null for anything else under stacks/ */
  stackOfSpecKey(key: string): string | null {
    return this.stackOf(key, "/spec");
  }
  stackOfSignatureKey(key: string): string | null {
    return this.stackOf(key, "/signature");
  }
  stackOfLatestKey(key: string): string | null {
    return this.stackOf(key, "/latest");
  }
  private stackOf(key: string, suffix: string): string | null {
    if (!key.startsWith(this.stacks) || !key.endsWith(suffix)) return null;
    const stack = key.slice(this.stacks.length, -suffix.length);
    return NAME_RE.test(stack) ? stack : null;
  }
  get archives(): string {
    return `${this.prefix}archives/`;
  }
  archive(sha: string): string {
    return `${this.archives}${sha}/`;
  }
  archiveMeta(sha: string): string {
    return `${this.archive(sha)}meta`;
  }
  archiveChunk(sha: string, n: number): string {
    return `${this.archive(sha)}${String(n).padStart(5, "0")}`;
  }
  get status(): string {
    return `${this.prefix}status/`;
  }
  nodeStatus(node: string): string {
    return `${this.status}${node}/`;
  }
  stackStatus(node: string, stack: string): string {
    return `${this.nodeStatus(node)}${stack}`;
  }
  /** node and stack of a status key (status/<node>/<stack>), or null for anything else */
  nodeStackOfStatusKey(key: string): { node: string; stack: string } | null {
    if (!key.startsWith(this.status)) return null;
    const parts = key.slice(this.status.length).split("/");
    const [node, stack] = parts;
    return parts.length === 2 && node && stack ? { node, stack } : null;
  }
  get agents(): string {
    return `${this.prefix}agents/`;
  }
  agent(node: string): string {
    return `${this.agents}${node}`;
  }
  /** node of an agent record key (agents/<node>), or null */
  nodeOfAgentKey(key: string): string | null {
    if (!key.startsWith(this.agents)) return null;
    const node = key.slice(this.agents.length);
    return node && !node.includes("/") ? node : null;
  }
  get placements(): string {
    return `${this.prefix}placements/`;
  }
  placement(stack: string): string {
    return `${this.placements}${checkName(stack)}`;
  }
  /** stack name of a placements key, or null */
  stackOfPlacementKey(key: string): string | null {
    if (!key.startsWith(this.placements)) return null;
    const stack = key.slice(this.placements.length);
    return NAME_RE.test(stack) ? stack : null;
  }
  get scheduler(): string {
    return `${this.prefix}scheduler/`;
  }
  get schedulerLeader(): string {
    return `${this.scheduler}leader`;
  }
  get fleet(): string {
    return `${this.prefix}fleet/`;
  }
  get fleetOwned(): string {
    return `${this.fleet}owned`;
  }
  lock(stack: string): string {
    return `${this.prefix}locks/${checkName(stack)}`;
  }
  get historyRoot(): string {
    return `${this.prefix}history/`;
  }
  history(stack: string): string {
    return `${this.historyRoot}${checkName(stack)}/`;
  }
  historyEntry(stack: string, generation: number): string {
    return `${this.history(stack)}${String(generation).padStart(8, "0")}`;
  }
  /** the signature of a history record (shared/record-signing.ts) */
  historySignature(stack: string, generation: number): string {
    return `${this.historyEntry(stack, generation)}/signature`;
  }
}

function checkName(name: string): string {
  if (!NAME_RE.test(name))
    throw new ConfigError("stack name", `invalid stack name ${JSON.stringify(name)} (letters, digits, '.', '_', '-')`);
  return name;
}
