/**
 * What the agent tells its local Consul agent about itself and its stacks: the houston-agent
 * service with its agents/<node> record, and per stack it runs a houston-<stack> service whose
 * checks mirror systemd (stack-service.ts decides; this sends only the changes; a unit's check
 * leaves with it). After a start, or when Consul was away, everything is sent again, in case it
 * forgot, and Houston's registrations that match nothing here any more (strays, left by an agent
 * that stopped mid-way or lost its state) are dropped: never another tool's.
 * The houston-agent check is a TTL check that the agent itself passes while it is ready, not an
 * HTTP check on its port: whoever takes the port while the agent is down (it exits when the port
 * is taken, and systemd restarts it) would answer an HTTP check for it, and keep the scheduler
 * role's session (tied to this check) alive. Passing a TTL check takes the agent's Consul token.
 */
import { Backoff, sleep } from "../shared/backoff.js";
import type { Consul } from "../shared/consul.js";
import { errorText } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import { AGENT_SERVICE, type AgentRecord, type StatusReport } from "../shared/spec.js";
import { putAgent } from "../shared/stores/agents.js";
import { serviceChanges, stackService, strays, type StackService } from "./stack-service.js";

/** Consul's ID of a service's own check */
const AGENT_CHECK = `service:${AGENT_SERVICE}`;

export class Registrar {
  /** what the local Consul agent was last sent for each stack's service */
  private readonly sent = new Map<string, StackService>();
  /** the local Consul agent's registrations were compared with ours (stack services; declared ones) */
  private reconciled = { stacks: false, declared: false };
  private readonly checkTtlSeconds: number;
  /** the heartbeat of the agent's own check, once registered: wakes it early */
  private heartbeat: { wake: () => void } | null = null;

  constructor(
    private readonly consul: Consul,
    private readonly kv: KvLayout,
    private readonly log: (message: string) => void,
    opts: { checkTtlSeconds?: number } = {},
  ) {
    this.checkTtlSeconds = opts.checkTtlSeconds ?? 10;
  }

  /**
   * Registers the agent's own service (a TTL check, critical until the agent is ready) and record,
   * retrying until done or aborted; then keeps the check passing every third of its TTL while
   * `ready()`, until aborted (then it goes critical within the TTL).
   */
  async registerAgent(
    record: () => AgentRecord,
    check: { host: string; port: number; ready: () => boolean },
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
          Check: {
            TTL: `${this.checkTtlSeconds}s`,
            Status: check.ready() ? "passing" : "critical",
            Notes: "passed by houston-agent itself while it runs and has reconciled once",
          },
        });
        await putAgent(this.consul, this.kv, r);
        if (!this.heartbeat) void this.keepPassing(check.ready, signal);
        return;
      } catch (err) {
        this.log(`registration in Consul failed, retrying: ${errorText(err)}`);
        await sleep(backoff.next(), signal);
      }
    }
  }

  /** The agent became ready: pass its check now rather than at the next beat. */
  agentReady(): void {
    this.heartbeat?.wake();
  }

  private async keepPassing(ready: () => boolean, signal: AbortSignal): Promise<void> {
    const heartbeat = { wake: (): void => undefined };
    this.heartbeat = heartbeat;
    let failing = false;
    while (!signal.aborted) {
      if (ready()) {
        try {
          await this.consul.agentCheckUpdate(AGENT_CHECK, "passing", `houston-agent is running (pid ${process.pid})`);
          if (failing) this.log("the houston-agent check is passed again");
          failing = false;
        } catch (err) {
          // Consul away, or it forgot the service (the agent registers again when it is back)
          if (!failing) this.log(`could not pass the houston-agent check (${errorText(err)}); will retry`);
          failing = true;
        }
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          heartbeat.wake = () => undefined;
          resolve();
        };
        const timer = setTimeout(done, (this.checkTtlSeconds * 1000) / 3);
        signal.addEventListener("abort", done, { once: true });
        heartbeat.wake = done;
      });
    }
    this.heartbeat = null;
  }

  /** Consul may have lost what it was told: send everything again next time. */
  forget(): void {
    this.sent.clear();
    this.reconciled = { stacks: false, declared: false };
  }

  /**
   * Mirrors each stack's report into its Consul service and unit checks; false if Consul failed.
   * `declared`: the IDs of the units' declared services this agent registered, or null while a
   * pass may be registering one (then those are left alone: only stack services are reconciled);
   * asked after Consul's listing, so a service a pass registered meanwhile is known or null.
   */
  async syncStacks(
    node: string,
    reports: Omit<StatusReport, "updatedAt">[],
    versions: Map<string, string | null>,
    declared: () => ReadonlySet<string> | null = () => null,
  ): Promise<boolean> {
    // a stack with nothing on this host (placed elsewhere) has no service here
    const here = reports.filter((r) => r.units.length > 0 || r.errors.length > 0);
    const wanted = new Map(here.map((r) => [r.stack, stackService(r, versions.get(r.stack) ?? null)]));
    try {
      if (!this.reconciled.stacks || !this.reconciled.declared) await this.dropStrays([...wanted.values()], declared);
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
        for (const id of change.dropChecks) await this.consul.agentCheckDeregister(id);
        for (const c of change.update) await this.consul.agentCheckUpdate(c.id, c.status, c.output);
        if (after) this.sent.set(stack, after);
      }
      return true;
    } catch (err) {
      this.log(`could not update the stacks' Consul services (${errorText(err)}); will retry`);
      return false;
    }
  }

  /** Deregisters Houston's services and checks on the local Consul agent that match nothing here. */
  private async dropStrays(wanted: StackService[], known: () => ReadonlySet<string> | null): Promise<void> {
    const registered = { services: await this.consul.agentServices(), checks: await this.consul.agentChecks() };
    const declared = known();
    const drop = strays(registered, wanted, declared);
    for (const id of drop.services) {
      await this.consul.agentServiceDeregister(id);
      this.log(`deregistered ${id} from Consul: nothing of it runs here any more`);
    }
    for (const id of drop.checks) {
      await this.consul.agentCheckDeregister(id);
      this.log(`deregistered check ${id} from Consul: its unit is no longer here`);
    }
    this.reconciled = { stacks: true, declared: this.reconciled.declared || declared !== null };
  }
}
