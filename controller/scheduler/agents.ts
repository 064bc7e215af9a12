/**
 * The native backend: Houston's agents. Hosts are the agents registered under agents/ with their
 * Consul health; a unit goes to every host whose metadata matches its [X-Fleet] placement (the
 * agents' own targeting rule); reports are the agents' status/<node>/<stack> documents.
 */
import type { Consul } from "../../shared/consul.js";
import type { KvLayout } from "../../shared/kv-layout.js";
import { followReports, parseReports, readHosts } from "../rollout/fleet-view.js";
import { targetsOf } from "../rollout/rollout-plan.js";
import type { Scheduler } from "./scheduler.js";

export function agentsScheduler(consul: Consul, kv: KvLayout): Scheduler {
  return {
    name: "agents",
    hosts: () => readHosts(consul, kv),
    place: targetsOf,
    follow: (stack, deadline, check, describe, signal) =>
      followReports(consul, kv, stack, deadline, check, describe, signal),
    reports: async () => parseReports(await consul.kvList(kv.status), kv),
  };
}
