/**
 * The agent. Watches stack specs and the scheduler's placements with blocking queries, caches
 * the last valid ones in SQLite, and runs reconcile passes (ports for ServicePort=auto → observe
 * → reconcileHost → carry out the steps → report → carry out what waited for the report). It also
 * competes for the scheduler role (scheduler-role.ts).
 * Passes never overlap and a change during a pass triggers another (pass-runner.ts); each
 * stack's phase comes from what the passes found (stack-phase.ts); reports go out through
 * reporter.ts. Without Consul it keeps what it has, retries with backoff, and resumes without
 * restarting anything.
 */
import type { KeyObject } from "node:crypto";
import { Backoff } from "../shared/backoff.js";
import { HOUSTON_VERSION } from "../shared/version.js";
import type { Consul, SessionInfo } from "../shared/consul.js";
import { checkLeader, ignoredHolder } from "../shared/stores/leader.js";
import { errorText } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import type { AcceptScope, TrustStore } from "../shared/signing.js";
import { AgentRecordSchema, SCHEMA_VERSION, type AgentRecord } from "../shared/spec.js";
import { identify } from "./identity.js";
import { observeHost } from "./observe.js";
import { assignPorts } from "./ports.js";
import { Registrar } from "./registrar.js";
import { RefusalLog, intakePlacements, intakeSpecs } from "./accept.js";
import { applySteps, type ApplyDeps } from "./apply.js";
import type { AgentConfig } from "./config.js";
import { Metrics } from "./metrics.js";
import { PassRunner } from "./pass-runner.js";
import { reconcileHost, withoutReplaced, type HostObservation } from "./reconcile.js";
import { Reporter } from "./reporter.js";
import { NO_FACTS, afterPass, allErrors, type StackFacts } from "./stack-phase.js";
import type { AgentState } from "./state.js";
import type { SystemdApi } from "./systemd.js";
import { desiredForHost, type HostDesired } from "./targeting.js";
import { SchedulerRole } from "./scheduler-role.js";
import { journalctl, UnitStates } from "./unit-states.js";
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
  /** what the passes and the spec watch found, per stack (its phase: stack-phase.ts) */
  private facts: StackFacts = NO_FACTS;
  /** the scheduler role's sessions seen, by ID (is the holder bound to its health?) */
  private readonly holderSessions = new Map<string, SessionInfo | null>();
  /** why the latest placements were not taken in (an ill-shaped role holder), or null */
  placementsIgnored: string | null = null;
  /** Consul came back: the local agent may have lost our services (cleared by a pass without error) */
  private registrationsStale = false;
  /** the trusted key IDs in the last agents/<node> record written (JSON) */
  private publishedKeys = "";
  private readonly startedAt = new Date().toISOString();
  private desiredCache: { key: string; value: HostDesired } | null = null;
  private readonly unitStates: UnitStates;
  private readonly registrar: Registrar;
  private readonly reporter: Reporter;
  private readonly runner: PassRunner;
  private readonly refusalLog = new RefusalLog();
  readonly role: SchedulerRole;
  machineId: string | undefined;
  /** called after every pass (local archive requests wait on them) */
  private readonly passWaiters = new Set<() => void>();
  private readonly abort = new AbortController();

  constructor(
    readonly cfg: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.registrar = new Registrar(deps.consul, deps.kv, (m) => this.log(m));
    this.unitStates = new UnitStates(deps.systemd, cfg.journal ? journalctl : null);
    this.runner = new PassRunner({
      pass: () => this.pass(),
      backoff: new Backoff({ minMs: 500, maxMs: 15_000 }),
      onError: (err) => this.log(`reconcile pass failed: ${errorText(err)}`),
      afterPass: () => {
        for (const w of this.passWaiters) w();
      },
    });
    this.reporter = new Reporter(
      {
        ...deps,
        registrar: this.registrar,
        unitStates: this.unitStates,
        metrics: this.metrics,
        log: (m) => this.log(m),
        node: () => this.node,
        desired: () => this.desired(),
        facts: () => this.facts,
        registrationsStale: () => this.registrationsStale,
        passRunning: () => this.runner.running,
      },
      this.abort.signal,
    );
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
    this.runner.trigger();
    await this.runner.settled();
    this.ready = true;
    this.registrar.agentReady();
    void this.follow();
    void this.followPlacements();
    if (this.cfg.scheduler) void this.role.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.runner.stop();
    await this.reporter.stop(); // the state database closes after this
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
      const refusals = intakeSpecs(entries, this.deps.kv, this.deps.state, keys, this.scope);
      for (const line of this.refusalLog.lines(refusals)) this.log(line);
      this.facts = {
        ...this.facts,
        refused: new Map(refusals.map((r) => [r.stack, [r.reason]])),
        refusals: new Map(refusals.map((r) => [r.stack, { generation: r.generation, problem: r.problem }])),
      };
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
      // placements are taken in only while the role's holder (if any) is bound to its health
      const holder = await checkLeader(this.deps.consul, this.deps.kv, this.holderSessions).catch(
        (err: unknown) => new Error(errorText(err)),
      );
      if (this.abort.signal.aborted) return; // stopped meanwhile: the state may be closed
      // the holder cannot be read (Consul away, or a policy made before session reads): as before
      if (holder instanceof Error) this.log(`scheduler role's session not checked: ${holder.message}`);
      const ignored = holder instanceof Error || !holder.problem ? null : ignoredHolder(holder);
      if (ignored !== this.placementsIgnored && ignored) this.log(ignored);
      this.placementsIgnored = ignored;
      if (ignored) continue;
      intakePlacements(entries, this.deps.kv, this.deps.state, (m) => this.log(m));
      this.trigger();
    }
  }

  /**
   * What this host should run now, from the cached specs and placements (derived again only when
   * they change); without the units a replacement displaces here (stop then start), so the report
   * does not list them as wanted.
   */
  private desired(): HostDesired {
    const { state } = this.deps;
    const key = `${state.revision} ${this.node} ${this.machineId ?? ""} ${JSON.stringify(this.meta)}`;
    if (this.desiredCache?.key !== key) {
      const value = desiredForHost(state.specs(), state.placements(), this.node, this.meta, this.machineId);
      for (const line of [...value.refused.values()].flat()) this.log(line);
      this.desiredCache = { key, value: withoutReplaced(value) };
    }
    return this.desiredCache.value;
  }

  /** what signatures must be for: this agent's KV prefix, cluster and environment */
  private get scope(): AcceptScope {
    return { prefix: this.deps.kv.prefix, cluster: this.cfg.cluster, environment: this.cfg.environment };
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
    this.runner.trigger();
  }

  /** One reconcile pass (run by the pass runner, never two at once); true when every step succeeded. */
  private async pass(): Promise<boolean> {
    const t0 = process.hrtime.bigint();
    let ok = false;
    try {
      const desired = await assignPorts(this.desired(), this.deps.state);
      const plan = reconcileHost(await this.observe(desired), desired);
      // reports sent while the steps run (unit state changes) say these stacks are converging
      this.facts = { ...this.facts, pending: new Set(plan.steps.flatMap((s) => ("stack" in s ? [s.stack] : []))) };
      const errors = plan.steps.length ? await applySteps(plan.steps, this.applyDeps()) : new Map<string, string[]>();
      this.facts = afterPass(this.facts, errors);
      for (const [stack, gen] of desired.generations) {
        if (!errors.has(stack)) this.deps.state.setApplied(stack, gen);
      }
      for (const stack of this.deps.state.applied().keys())
        if (!desired.generations.has(stack)) this.deps.state.setApplied(stack, null);
      ok = errors.size === 0;
      if (ok) this.registrationsStale = false;
      await this.reporter.publish(desired);
      if (plan.afterReport.length > 0 && (await applySteps(plan.afterReport, this.applyDeps())).size > 0) ok = false;
    } finally {
      this.metrics.recordPass(Number(process.hrtime.bigint() - t0) / 1e9, !ok);
      this.lastPassAt = new Date().toISOString();
    }
    return ok;
  }

  private applyDeps(): ApplyDeps {
    const { root, unitDir, startTimeoutMs, maxArchiveBytes } = this.cfg;
    return {
      ...this.deps,
      root,
      unitDir,
      startTimeoutMs,
      maxArchiveBytes,
      cluster: this.cfg.cluster,
      log: (m) => this.log(m),
    };
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
        errors: [...(this.facts.refused.get(stack) ?? []), ...(this.facts.failed.get(stack) ?? [])],
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
    this.reporter.schedule();
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
          : {
              required: true,
              trustedKeys: keys,
              environment: this.cfg.environment ?? "any",
              prefix: this.deps.kv.prefix,
              cluster: this.cfg.cluster,
            },
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
      // an ill-shaped scheduler role holder: its placements are not taken in (the last good ones stay)
      ...(this.placementsIgnored ? { placementsIgnored: this.placementsIgnored } : {}),
      meta: this.meta,
      consulReachable: this.consulReachable,
      lastPassAt: this.lastPassAt,
      applied: Object.fromEntries(this.deps.state.applied()),
      units: this.deps.state.units().map((u) => ({ ...u, ...(this.unitStates.last.get(u.name) ?? {}) })),
      archives: Object.fromEntries(this.deps.state.installedArchives()),
      errors: Object.fromEntries(allErrors(this.facts)),
    };
  }

  log(message: string): void {
    process.stderr.write(`${new Date().toISOString()} houston-agent[${this.node || "?"}] ${message}\n`);
  }
}
