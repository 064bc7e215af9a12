/**
 * Who this host is: its node name and metadata from the agent's config, else from the local Consul
 * agent, and its machine ID (fleet names machines by it). What Consul said is cached in the state
 * database, so that an agent starting while Consul is away still knows itself.
 */
import { readFileSync } from "node:fs";
import { Backoff, sleep } from "../shared/backoff.js";
import type { Consul } from "../shared/consul.js";
import { errorText } from "../shared/errors.js";
import type { AgentConfig } from "./config.js";
import type { AgentState } from "./state.js";

export interface Identity {
  node: string;
  meta: Record<string, string>;
  machineId: string | undefined;
  /** whether the local Consul agent answered */
  consulReachable: boolean;
}

/** Waits for Consul (with backoff) only when nothing is cached; throws "stopped" once `signal` aborts. */
export async function identify(deps: {
  consul: Pick<Consul, "agentSelf">;
  state: Pick<AgentState, "identity" | "setIdentity">;
  cfg: Pick<AgentConfig, "node" | "meta">;
  log: (message: string) => void;
  signal: AbortSignal;
}): Promise<Identity> {
  const { consul, state, cfg, log, signal } = deps;
  let machineId: string | undefined;
  try {
    machineId = readFileSync("/etc/machine-id", "utf8").trim() || undefined;
  } catch {
    machineId = undefined;
  }
  const cached = state.identity();
  const backoff = new Backoff({ minMs: 250, maxMs: 5000 });
  for (;;) {
    try {
      const self = await consul.agentSelf();
      const node = cfg.node ?? self.nodeName;
      const meta = { ...self.meta, ...cfg.meta };
      state.setIdentity(node, meta);
      return { node, meta, machineId, consulReachable: true };
    } catch (err) {
      if (cached) {
        const node = cfg.node ?? cached.node;
        log(`Consul unreachable (${errorText(err)}); running from cached state as ${node}`);
        return { node, meta: { ...cached.meta, ...cfg.meta }, machineId, consulReachable: false };
      }
      log(`waiting for Consul to learn this node's name and metadata: ${errorText(err)}`);
      await sleep(backoff.next(), signal);
      if (signal.aborted) throw new Error("stopped");
    }
  }
}
