/**
 * Publishes this host's reports: each stack's status/<node>/<stack> (written when it changed,
 * deleted when the stack has nothing left here) and, through the registrar, each stack's Consul
 * service. Reports go out one at a time, so an older one never lands after a newer one; unit
 * state changes ask for one soon (they come in bursts), and so does the end of a young unit's
 * window (its report then says it stood); a report Consul did not take is retried with its own
 * backoff (the pass runner has another).
 */
import { Backoff } from "../shared/backoff.js";
import type { Consul } from "../shared/consul.js";
import { errorText } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import { deleteReport, putReport } from "../shared/stores/reports.js";
import type { Metrics } from "./metrics.js";
import type { Registrar } from "./registrar.js";
import { buildReports } from "./report.js";
import type { StackFacts } from "./stack-phase.js";
import type { AgentState } from "./state.js";
import type { HostDesired } from "./targeting.js";
import type { UnitStates } from "./unit-states.js";

export interface ReporterDeps {
  consul: Consul;
  kv: KvLayout;
  state: AgentState;
  registrar: Registrar;
  unitStates: UnitStates;
  metrics: Metrics;
  log(message: string): void;
  /** what the agent knows now: read when a report is built */
  node(): string;
  desired(): HostDesired;
  facts(): StackFacts;
  /** the local Consul agent may have lost the stacks' services: send them in full */
  registrationsStale(): boolean;
  /** a pass is running */
  passRunning(): boolean;
}

export class Reporter {
  private timer: NodeJS.Timeout | null = null;
  /** when a young unit's window ends: a report then says it stood */
  private windowTimer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** same timings as the pass runner's: 0.5 s doubling to 15 s, with jitter */
  private readonly backoff = new Backoff({ minMs: 500, maxMs: 15_000 });

  constructor(
    private readonly deps: ReporterDeps,
    private readonly signal: AbortSignal,
  ) {}

  /** A report soon (unit state changes come in bursts); passes report at their end anyway. */
  schedule(): void {
    if (this.timer || this.signal.aborted) return;
    // during a pass over many units (starting one after another) at most one report a second: each
    // one reads every unit's state and rewrites the stack's report; the pass reports at its end anyway
    const many = this.deps.passRunning() && this.deps.state.units().length > 20;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        void this.publish(this.deps.desired());
      },
      many ? 1000 : 100,
    );
  }

  /** Reports one at a time, so an older one never lands after a newer one. */
  publish(desired: HostDesired): Promise<void> {
    this.chain = this.chain
      .then(() => this.report(desired))
      .catch((err: unknown) => this.deps.log(`report failed: ${errorText(err)}`));
    return this.chain;
  }

  /** No report is scheduled from now on; resolves once the one under way is out (or failed). */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.whenWindowEnds(null);
    await this.chain;
  }

  /** Publishes each stack's report when it changed; retried later if Consul is away. */
  private async report(desired: HostDesired): Promise<void> {
    const { state, kv, consul, registrar } = this.deps;
    const facts = this.deps.facts();
    const node = this.deps.node();
    const owned = state.units();
    const { states, lingering, recheckInMs } = await this.deps.unitStates.read(owned, desired);
    this.whenWindowEnds(recheckInMs);
    const reports = buildReports({
      node,
      desired,
      owned,
      states,
      applied: state.applied(),
      facts,
      archives: state.installedArchives(),
      lingering,
      ports: state.ports(),
    });
    this.deps.metrics.setUnitStates([...states.values()].map((s) => s.activeState));
    let pending = false;
    const present = new Set(reports.map((r) => r.stack));
    try {
      for (const r of reports) {
        const key = kv.stackStatus(node, r.stack);
        const body = JSON.stringify(r);
        if (state.lastReport(key) === body) continue;
        await putReport(consul, kv, node, r);
        state.setLastReport(key, body);
      }
      for (const stack of this.reportedStacks(node)) {
        if (present.has(stack)) continue;
        await deleteReport(consul, kv, node, stack);
        state.setLastReport(kv.stackStatus(node, stack), null);
      }
    } catch (err) {
      pending = true;
      this.deps.log(`could not publish status (${errorText(err)}); will retry`);
    }
    if (!pending) {
      if (this.deps.registrationsStale()) registrar.forget();
      const versions = new Map(state.specs().map((s) => [s.stack, s.deployment.version]));
      // the units' declared services it registered; none while a pass may be registering one
      const declared = (): ReadonlySet<string> | null =>
        this.deps.passRunning()
          ? null
          : new Set([
              ...state.units().flatMap((u) => (u.serviceId ? [u.serviceId] : [])),
              ...[...state.fleetServices().values()].map((f) => f.serviceId),
            ]);
      pending = !(await registrar.syncStacks(node, reports, versions, declared));
    }
    if (!pending) this.backoff.reset();
    else if (!this.signal.aborted) setTimeout(() => this.schedule(), this.backoff.next()).unref();
  }

  /** A report once the youngest running window ends (a rollout waits for the host's word that it stood). */
  private whenWindowEnds(ms: number | null): void {
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = null;
    if (ms === null || this.signal.aborted) return;
    this.windowTimer = setTimeout(() => {
      this.windowTimer = null;
      this.schedule();
    }, ms + 10);
    this.windowTimer.unref();
  }

  private reportedStacks(node: string): string[] {
    const prefix = this.deps.kv.nodeStatus(node);
    return this.deps.state
      .reportKeys()
      .filter((k) => k.startsWith(prefix))
      .map((k) => k.slice(prefix.length));
  }
}
