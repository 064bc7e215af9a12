/**
 * The agent loop. Watches stack specs and the scheduler's placements with blocking queries, caches
 * the last valid ones in SQLite, and runs reconcile passes (observe → reconcileHost → applySteps
 * → report). It also competes for the scheduler role (scheduler-role.ts).
 * Passes never overlap; a change during a pass triggers another. Without Consul it keeps what it
 * has, retries with backoff, and resumes without restarting anything.
 */
import type { KeyObject } from "node:crypto";
import { Backoff, sleep } from "../shared/backoff.js";
import { HOUSTON_VERSION } from "../shared/version.js";
import type { Consul } from "../shared/consul.js";
import { errorText } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import type { TrustStore } from "../shared/signing.js";
import { AgentRecordSchema, SCHEMA_VERSION, type AgentRecord } from "../shared/spec.js";
import { identify } from "./identity.js";
import { observeHost } from "./observe.js";
import { Registrar } from "./registrar.js";
import { intakePlacements, intakeSpecs } from "./accept.js";
import { applySteps, type ApplyDeps } from "./apply.js";
import type { AgentConfig } from "./config.js";
import { Metrics } from "./metrics.js";
import { reconcileHost, type HostObservation } from "./reconcile.js";
import { buildReports } from "./report.js";
import type { AgentState } from "./state.js";
import type { SystemdApi } from "./systemd.js";
import { desiredForHost, type HostDesired } from "./targeting.js";
import { SchedulerRole } from "./scheduler-role.js";
import { UnitStates } from "./unit-states.js";
import { Fleet } from "../shared/fleet.js";
import { archiveRequestAnswer, type ArchiveAnswer } from "./local-socket.js";

export const AGENT_VERSION = HOUSTON_VERSION;

export interface AgentDeps {
  consul: Consul;
  kv: KvLayout;
  systemd: SystemdApi;
  state: AgentState;
  /** keys whose signatures make a spec acceptable (none configured: unsigned specs are applied) */
  trust: TrustStore;
}

export class Agent {
  readonly metrics = new Metrics();
  node = "";
  meta: Record<string, string> = {};
  consulReachable = false;
  lastPassAt: string | null = null;
  /** identified and reconciled once */
  ready = false;
  /** errors per stack from specs that could not be read (kept apart from pass errors) */
  private specErrors = new Map<string, string[]>();
  private passErrors = new Map<string, string[]>();
  /** stacks with steps still to do */
  private converging = new Set<string>();
  private registrationsStale = false;
  /** the trusted key IDs in the last agents/<node> record written (JSON) */
  private publishedKeys = "";
  private readonly startedAt = new Date().toISOString();
  private reporting: Promise<void> = Promise.resolve();
  private desiredCache: { key: string; value: HostDesired } | null = null;
  private readonly unitStates: UnitStates;
  private readonly registrar: Registrar;
  readonly role: SchedulerRole;
  machineId: string | undefined;
  private running = false;
  private again = false;
  private retry: NodeJS.Timeout | null = null;
  private reportTimer: NodeJS.Timeout | null = null;
  private readonly backoff = new Backoff({ minMs: 500, maxMs: 15_000 });
  /** called after every pass (local archive requests wait on them) */
  private readonly passWaiters = new Set<() => void>();
  private readonly abort = new AbortController();

  constructor(
    readonly cfg: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.registrar = new Registrar(deps.consul, deps.kv, (m) => this.log(m));
    this.unitStates = new UnitStates(deps.systemd, cfg.journal);
    this.role = new SchedulerRole(
      {
        consul: deps.consul,
        kv: deps.kv,
        node: () => this.node,
        specs: () => deps.state.specs(),
        fleet: new Fleet(cfg.fleet),
        log: (m) => this.log(m),
      },
      { graceMs: cfg.schedulerGraceMs, ttlSeconds: 15 },
    );
  }

  /** Learns who it is, reconciles from the cache, then follows Consul until stop(). */
  async start(): Promise<void> {
    const id = await identify({ ...this.deps, cfg: this.cfg, log: (m) => this.log(m), signal: this.abort.signal });
    ({ node: this.node, meta: this.meta, machineId: this.machineId, consulReachable: this.consulReachable } = id);
    if (this.deps.state.noteBoot(await this.deps.systemd.bootMark())) {
      this.log("the host was rebooted: its units are started again, once each");
    }
    this.deps.systemd.onStateChange(() => this.scheduleReport());
    void this.register();
    await this.pass();
    this.ready = true;
    this.registrar.agentReady();
    void this.follow();
    void this.followPlacements();
    if (this.cfg.scheduler) void this.role.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of [this.retry, this.reportTimer]) if (t) clearTimeout(t);
    while (this.running) await sleep(20);
    await this.reporting; // the state database closes after this
  }

  /** The houston-agent service (a TTL check the agent passes itself) and the agents/<node> record; retried until done. */
  private register(): Promise<void> {
    const { port, checkHost } = this.cfg.listen;
    const record = (): AgentRecord => {
      const trustedKeys = this.trustedKeyIds();
      this.publishedKeys = JSON.stringify(trustedKeys);
      return AgentRecordSchema.parse({
        schema: SCHEMA_VERSION,
        node: this.node,
        meta: this.meta,
        version: AGENT_VERSION,
        startedAt: this.startedAt,
        httpAddr: `${checkHost}:${port}`,
        machineId: this.machineId,
        trustedKeys,
      });
    };
    return this.registrar.registerAgent(record, { host: checkHost, port, ready: () => this.ready }, this.abort.signal);
  }

  /** Blocking-query watch of stacks/: every change replaces the cached specs and triggers a pass. */
  private async follow(): Promise<void> {
    const watch = this.deps.consul.watchPrefix(this.deps.kv.stacks, {
      signal: this.abort.signal,
      wait: "5m",
      // a restarted server answers default reads from its snapshot before it has replayed its log:
      // a spec missing from such an answer would stop that stack's units. Consistent reads wait.
      consistent: true,
      onError: (err) => {
        if (this.consulReachable) this.log(`lost Consul, keeping the current state: ${errorText(err)}`);
        this.consulReachable = false;
      },
    });
    for await (const { entries } of watch) {
      if (!this.consulReachable) {
        // the local Consul agent may have been rebuilt meanwhile: make sure it knows us again
        this.log("Consul is back");
        this.registrationsStale = true;
        void this.register();
      }
      this.consulReachable = true;
      const keys = this.trustedKeys();
      this.specErrors = intakeSpecs(entries, this.deps.kv, this.deps.state, keys);
      // a key dropped into (or removed from) the trust directory: the record says so (rotation)
      const ids = JSON.stringify(keys === null ? null : keys instanceof Error ? [] : [...keys.keys()]);
      if (ids !== this.publishedKeys) void this.register();
      this.role.nudge();
      this.trigger();
    }
  }

  /**
   * Blocking-query watch of placements/ (the scheduler's): cached like the specs, so a host cut
   * off from Consul keeps running what was placed on it (see README, Placement).
   */
  private async followPlacements(): Promise<void> {
    const watch = this.deps.consul.watchPrefix(this.deps.kv.placements, {
      signal: this.abort.signal,
      wait: "5m",
      consistent: true,
    });
    for await (const { entries } of watch) {
      intakePlacements(entries, this.deps.kv, this.deps.state, (m) => this.log(m));
      this.trigger();
    }
  }

  /** What this host should run now, from the cached specs and placements (derived again only when they change). */
  private desired(): HostDesired {
    const { state } = this.deps;
    const key = `${state.revision} ${this.node} ${this.machineId ?? ""} ${JSON.stringify(this.meta)}`;
    if (this.desiredCache?.key !== key)
      this.desiredCache = {
        key,
        value: desiredForHost(state.specs(), state.placements(), this.node, this.meta, this.machineId),
      };
    return this.desiredCache.value;
  }

  /** null: no keys configured (unsigned specs are applied); an Error fails closed. */
  private trustedKeys(): Map<string, KeyObject> | Error | null {
    if (!this.deps.trust.configured) return null;
    try {
      return this.deps.trust.keys();
    } catch (err) {
      this.log(errorText(err));
      return err instanceof Error ? err : new Error(errorText(err));
    }
  }

  trigger(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    void this.pass();
  }

  private async pass(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.running = true;
    const t0 = process.hrtime.bigint();
    let failed = false;
    try {
      const desired = this.desired();
      const all = reconcileHost(await this.observe(desired), desired);
      // a reload that only forgets removed units waits until the report is out (see reconcile.ts)
      const later = all.filter((s) => s.kind === "reload" && s.afterReport);
      const steps = all.filter((s) => !later.includes(s));
      // reports sent while the steps run (unit state changes) say these stacks are converging
      this.converging = new Set(steps.flatMap((s) => ("stack" in s ? [s.stack] : [])));
      this.passErrors = steps.length ? await applySteps(steps, this.applyDeps()) : new Map();
      // every step ran: what is left to do is what failed (a spec change meanwhile triggers another pass)
      this.converging = new Set(this.passErrors.keys());
      for (const [stack, gen] of desired.generations) {
        if (!this.passErrors.has(stack)) this.deps.state.setApplied(stack, gen);
      }
      for (const stack of this.deps.state.applied().keys())
        if (!desired.generations.has(stack)) this.deps.state.setApplied(stack, null);
      failed = this.passErrors.size > 0;
      if (!failed) this.registrationsStale = false;
      await this.publish(desired);
      if (later.length > 0 && (await applySteps(later, this.applyDeps())).size > 0) failed = true;
    } catch (err) {
      failed = true;
      this.log(`reconcile pass failed: ${errorText(err)}`);
    } finally {
      this.metrics.recordPass(Number(process.hrtime.bigint() - t0) / 1e9, failed);
      this.lastPassAt = new Date().toISOString();
      this.running = false;
    }
    for (const w of this.passWaiters) w();
    if (this.again) {
      this.again = false;
      void this.pass();
    } else if (failed && !this.abort.signal.aborted) {
      if (this.retry) clearTimeout(this.retry);
      this.retry = setTimeout(() => this.trigger(), this.backoff.next());
    } else this.backoff.reset();
  }

  private applyDeps(): ApplyDeps {
    const { root, unitDir, startTimeoutMs, maxArchiveBytes } = this.cfg;
    return { ...this.deps, root, unitDir, startTimeoutMs, maxArchiveBytes, log: (m) => this.log(m) };
  }

  private observe(desired: HostDesired): Promise<HostObservation> {
    return observeHost(this.deps, this.cfg.unitDir, desired, this.registrationsStale);
  }

  /**
   * A fleet file unit asks for its archive (agent/local-socket.ts): answered once installed, or
   * refused; waits for passes (the spec may still be on its way) up to 5 minutes.
   */
  async requestArchive(stack: string, sha: string, signal: AbortSignal): Promise<ArchiveAnswer> {
    const deadline = Date.now() + 300_000;
    this.trigger();
    for (;;) {
      const answer = archiveRequestAnswer({
        specs: this.deps.state.specs(),
        installed: this.deps.state.installedArchives(),
        errors: [...(this.specErrors.get(stack) ?? []), ...(this.passErrors.get(stack) ?? [])],
        node: this.node,
        meta: this.meta,
        stack,
        sha,
      });
      if (answer) return answer;
      if (signal.aborted || Date.now() > deadline)
        return {
          status: 504,
          message: `archive ${sha.slice(0, 12)} of ${stack}: no accepted fleet spec of ${stack} carries it (yet)`,
        };
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.passWaiters.delete(done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()) + 10);
        this.passWaiters.add(done);
        signal.addEventListener("abort", done);
      });
    }
  }

  /** A report soon (unit state changes come in bursts); passes report at their end anyway. */
  scheduleReport(): void {
    if (this.reportTimer || this.abort.signal.aborted) return;
    // during a pass over many units (starting one after another) at most one report a second: each
    // one reads every unit's state and rewrites the stack's report; the pass reports at its end anyway
    const many = this.running && this.deps.state.units().length > 20;
    this.reportTimer = setTimeout(
      () => {
        this.reportTimer = null;
        void this.publish(this.desired());
      },
      many ? 1000 : 100,
    );
  }

  /** Reports one at a time, so an older one never lands after a newer one. */
  private publish(desired: HostDesired): Promise<void> {
    this.reporting = this.reporting
      .then(() => this.report(desired))
      .catch((err: unknown) => this.log(`report failed: ${errorText(err)}`));
    return this.reporting;
  }

  /** Publishes each stack's report when it changed; retried later if Consul is away. */
  private async report(desired: HostDesired): Promise<void> {
    const converging = this.converging;
    const owned = this.deps.state.units();
    const { states, lingering } = await this.unitStates.read(owned, desired);
    const errors = new Map([...this.specErrors, ...this.passErrors]);
    const reports = buildReports({
      node: this.node,
      desired,
      owned,
      states,
      applied: this.deps.state.applied(),
      converging,
      errors,
      archives: this.deps.state.installedArchives(),
      lingering,
    });
    this.metrics.setUnitStates([...states.values()].map((s) => s.activeState));
    let pending = false;
    const present = new Set(reports.map((r) => r.stack));
    try {
      for (const r of reports) {
        const key = this.deps.kv.stackStatus(this.node, r.stack);
        const body = JSON.stringify(r);
        if (this.deps.state.lastReport(key) === body) continue;
        // pretty-printed: operators read these in the Consul UI's key/value view
        await this.deps.consul.kvPut(key, JSON.stringify({ ...r, updatedAt: new Date().toISOString() }, null, 2));
        this.deps.state.setLastReport(key, body);
      }
      for (const stack of this.reportedStacks()) {
        if (present.has(stack)) continue;
        const key = this.deps.kv.stackStatus(this.node, stack);
        await this.deps.consul.kvDelete(key);
        this.deps.state.setLastReport(key, null);
      }
    } catch (err) {
      pending = true;
      this.log(`could not publish status (${errorText(err)}); will retry`);
    }
    if (!pending) {
      if (this.registrationsStale) this.registrar.forget();
      const versions = new Map(this.deps.state.specs().map((s) => [s.stack, s.deployment.version]));
      pending = !(await this.registrar.syncStacks(this.node, reports, versions));
    }
    if (pending && !this.abort.signal.aborted) setTimeout(() => this.scheduleReport(), this.backoff.next()).unref();
  }

  private reportedStacks(): string[] {
    const prefix = this.deps.kv.nodeStatus(this.node);
    return this.deps.state
      .reportKeys()
      .filter((k) => k.startsWith(prefix))
      .map((k) => k.slice(prefix.length));
  }

  /** key IDs this agent trusts; null when it applies unsigned specs */
  private trustedKeyIds(): string[] | null {
    const keys = this.trustedKeys();
    return keys === null ? null : keys instanceof Error ? [] : [...keys.keys()];
  }

  /** what /status shows */
  snapshot(): Record<string, unknown> {
    const keys = this.trustedKeyIds();
    return {
      signatures:
        keys === null
          ? "not checked: no trusted keys, unsigned specs are applied"
          : { required: true, trustedKeys: keys },
      node: this.node,
      ready: this.ready,
      scheduler: !this.cfg.scheduler
        ? "off (--no-scheduler)"
        : this.role.leadingSince
          ? {
              role: "leader",
              since: this.role.leadingSince,
              passes: this.role.passes,
              fleet: { endpoint: this.cfg.fleet, lastError: this.role.mirror.lastError },
            }
          : { role: "standby" },
      meta: this.meta,
      consulReachable: this.consulReachable,
      lastPassAt: this.lastPassAt,
      applied: Object.fromEntries(this.deps.state.applied()),
      units: this.deps.state.units().map((u) => ({ ...u, ...(this.unitStates.last.get(u.name) ?? {}) })),
      archives: Object.fromEntries(this.deps.state.installedArchives()),
      errors: Object.fromEntries([...this.specErrors, ...this.passErrors]),
    };
  }

  log(message: string): void {
    process.stderr.write(`${new Date().toISOString()} houston-agent[${this.node || "?"}] ${message}\n`);
  }
}
