/**
 * What the agent tells its local Consul agent about itself and its stacks: the houston-agent
 * service (HTTP check on /health) with its agents/<node> record, and per stack it runs a
 * houston-<stack> service whose checks mirror systemd (stack-service.ts decides; this sends only
 * the changes). After Consul was away everything is sent again, in case it forgot.
 */
import { Backoff, sleep } from "../shared/backoff.js";
import type { Consul } from "../shared/consul.js";
import { errorText } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import { AGENT_SERVICE, type AgentRecord, type StatusReport } from "../shared/spec.js";
import { putAgent } from "../shared/stores/agents.js";
import { serviceChanges, stackService, type StackService } from "./stack-service.js";

export class Registrar {
  /** what the local Consul agent was last sent for each stack's service */
  private readonly sent = new Map<string, StackService>();

  constructor(
    private readonly consul: Consul,
    private readonly kv: KvLayout,
    private readonly log: (message: string) => void,
  ) {}

  /** Registers the agent's own service and record, retrying until done or aborted. */
  async registerAgent(
    record: () => AgentRecord,
    check: { host: string; port: number },
    signal: AbortSignal,
  ): Promise<void> {
    const backoff = new Backoff({ minMs: 500, maxMs: 15_000 });
    while (!signal.aborted) {
      try {
        const r = record();
        await this.consul.agentServiceRegister({
          ID: AGENT_SERVICE,
          Name: AGENT_SERVICE,
          Port: check.port,
          Tags: [`version:${r.version}`],
          Meta: { houston_node: r.node },
          Check: { HTTP: `http://${check.host}:${check.port}/health`, Interval: "5s", Timeout: "2s" },
        });
        await putAgent(this.consul, this.kv, r);
        return;
      } catch (err) {
        this.log(`registration in Consul failed, retrying: ${errorText(err)}`);
        await sleep(backoff.next(), signal);
      }
    }
  }

  /** Consul may have lost what it was told: send everything again next time. */
  forget(): void {
    this.sent.clear();
  }

  /** Mirrors each stack's report into its Consul service and unit checks; false if Consul failed. */
  async syncStacks(
    node: string,
    reports: Omit<StatusReport, "updatedAt">[],
    versions: Map<string, string | null>,
  ): Promise<boolean> {
    // a stack with nothing on this host (placed elsewhere) has no service here
    const here = reports.filter((r) => r.units.length > 0 || r.errors.length > 0);
    const wanted = new Map(here.map((r) => [r.stack, stackService(r, versions.get(r.stack) ?? null)]));
    try {
      for (const stack of new Set([...this.sent.keys(), ...wanted.keys()])) {
        const before = this.sent.get(stack) ?? null;
        const after = wanted.get(stack) ?? null;
        const change = serviceChanges(before, after);
        this.sent.delete(stack); // re-sent in full if anything below fails
        if (change.deregister) await this.consul.agentServiceDeregister(change.deregister);
        if (change.register) {
          const r = change.register;
          await this.consul.agentServiceRegister({
            ID: r.id,
            Name: r.name,
            Tags: r.tags,
            Meta: { houston_stack: stack, houston_node: node },
            // Consul copies a check's output to its catalog at once only when the status changes:
            // register with another status, so that the update below carries the output into the UI now
            Checks: r.checks.map((c) => ({
              CheckID: c.id,
              Name: c.unit,
              TTL: "8760h",
              Status: c.status === "passing" ? "warning" : "passing",
              Notes: `systemd state of ${c.unit}, set by houston-agent`,
            })),
          });
        }
        for (const c of change.update) await this.consul.agentCheckUpdate(c.id, c.status, c.output);
        if (after) this.sent.set(stack, after);
      }
      return true;
    } catch (err) {
      this.log(`could not update the stacks' Consul services (${errorText(err)}); will retry`);
      return false;
    }
  }
}
