/**
 * The scheduler role: one agent at a time places the fleet's non-global units (fleet's engine,
 * without fleet). The role is a Consul lock on scheduler/leader, held by a session bound to this
 * node's serfHealth and to this agent's own houston-agent check, so a dead host or a killed agent
 * gives it up within seconds and another agent takes it. The holder watches the agents' health,
 * is nudged when specs change, and writes placements/<stack> (shared/schedule.ts decides) in
 * transactions that also check it still holds the lock: a deposed holder can never write. On
 * taking the role it writes every document once, even unchanged, so that agents which ignored an
 * ill-shaped holder before it (shared/stores/leader.ts) take the placements in again. For
 * fleet-scheduled stacks it hands placement to fleetd instead (fleet-mirror.ts).
 */
import { Backoff, sleep } from "../shared/backoff.js";
import type { Consul, HealthEntry } from "../shared/consul.js";
import { errorText } from "../shared/errors.js";
import type { KvLayout } from "../shared/kv-layout.js";
import { machineStates, samePlacements, schedule } from "../shared/schedule.js";
import { AGENT_SERVICE, type StackSpec } from "../shared/spec.js";
import { agentViews, healthByNode, listAgents } from "../shared/stores/agents.js";
import { HOLDER_CHECKS, acquireLeader, leaderOf, readLeader } from "../shared/stores/leader.js";
import { deletePlacement, listPlacements, readablePlacements, writePlacement } from "../shared/stores/placements.js";
import type { Fleet } from "../shared/fleet.js";
import { isFleetStack } from "../shared/fleet-mirror.js";
import { FleetMirror } from "./fleet-mirror.js";

export interface RoleOptions {
  /** how long an agent may stay unwell before its units move (fleet's agent_ttl) */
  graceMs: number;
  /** the lock session's TTL (renewed every third of it) */
  ttlSeconds: number;
}

export interface RoleDeps {
  consul: Consul;
  kv: KvLayout;
  node: () => string;
  /** the specs this agent accepted (signature and schema checked) */
  specs: () => StackSpec[];
  /** fleetd, for fleet-scheduled stacks (agent/fleet-mirror.ts) */
  fleet: Fleet;
  log: (m: string) => void;
}

export class SchedulerRole {
  /** since when this agent holds the role (null: it does not) */
  leadingSince: string | null = null;
  passes = 0;
  private everLed = false;
  private wake: (() => void) | null = null;
  private dirty = true;
  /** the first pass of a new holder writes every document, even unchanged (see lead) */
  private rewrite = false;
  private health: HealthEntry[] | null = null;
  private readonly unwellSince = new Map<string, number>();
  readonly mirror: FleetMirror;

  constructor(
    private readonly deps: RoleDeps,
    private readonly opts: RoleOptions,
  ) {
    this.mirror = new FleetMirror(deps);
  }

  /** Specs or placements changed: place again (if leading). */
  nudge(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Competes for the role until `signal` aborts; never throws. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ minMs: 500, maxMs: 10_000 });
    while (!signal.aborted) {
      let session: string | null = null;
      try {
        session = await this.deps.consul.sessionCreate({
          name: `houston scheduler on ${this.deps.node()}`,
          ttlSeconds: this.opts.ttlSeconds,
          lockDelay: "0s",
          behavior: "release",
          checks: [...HOLDER_CHECKS],
        });
        await this.holdOrWait(session, signal);
        backoff.reset();
      } catch (err) {
        // the session is bound to this agent's own check: until Consul has seen it pass, wait quietly
        const starting = /Missing check|is in critical state/.test(errorText(err)) && !this.everLed;
        if (!signal.aborted && !starting) this.deps.log(`scheduler role: ${errorText(err)}; retrying`);
      } finally {
        if (this.leadingSince) this.deps.log("gave up the scheduler role");
        this.leadingSince = null;
        if (session) await this.deps.consul.sessionDestroy(session).catch(() => undefined);
      }
      await sleep(backoff.next(), signal);
    }
  }

  /** Takes the lock when free and leads while the session lives; returns when the session ends. */
  private async holdOrWait(session: string, signal: AbortSignal): Promise<void> {
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    signal.addEventListener("abort", stop);
    const renew = setInterval(
      () => {
        void this.deps.consul.sessionRenew(session).then(
          (alive) => alive || ac.abort(),
          () => undefined, // Consul away: the session may survive its TTL; the lock check tells
        );
      },
      (this.opts.ttlSeconds * 1000) / 3,
    );
    try {
      const { consul, kv } = this.deps;
      const watch = consul.watchPrefix(kv.scheduler, { signal: ac.signal, wait: "1m" });
      for await (const { entries } of watch) {
        if (leaderOf(entries, kv).session) continue; // held (by us or someone else): wait for the key to change
        const record = { node: this.deps.node(), since: new Date().toISOString() };
        if (await acquireLeader(consul, kv, session, record)) {
          this.leadingSince = new Date().toISOString();
          this.everLed = true;
          this.deps.log("took the scheduler role");
          await this.lead(session, ac.signal);
          return;
        }
      }
    } finally {
      clearInterval(renew);
      signal.removeEventListener("abort", stop);
    }
  }

  private async lead(session: string, signal: AbortSignal): Promise<void> {
    this.dirty = true;
    this.rewrite = true;
    void this.watchHealth(signal);
    while (!signal.aborted) {
      const wait = this.dirty ? await this.pass(session) : null;
      if (wait === false) return; // the lock is gone
      if (this.dirty) continue; // nudged during the pass: place again at once
      await new Promise<void>((resolve) => {
        const timer = typeof wait === "number" ? setTimeout(done, wait) : null;
        const onAbort = (): void => done();
        signal.addEventListener("abort", onAbort);
        this.wake = done;
        function done(): void {
          if (timer) clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          resolve();
        }
      });
      this.wake = null;
      if (typeof wait === "number") this.dirty = true;
    }
  }

  private async watchHealth(signal: AbortSignal): Promise<void> {
    let index = 0;
    const backoff = new Backoff({ minMs: 500, maxMs: 10_000 });
    while (!signal.aborted) {
      try {
        const r = await this.deps.consul.healthService(AGENT_SERVICE, { index, wait: "1m", signal });
        if (r.index !== index || index === 0) {
          this.health = r.entries;
          this.nudge();
        }
        index = r.index > 0 ? r.index : 0;
        backoff.reset();
      } catch {
        if (signal.aborted) return;
        index = 0;
        await sleep(backoff.next(), signal);
      }
    }
  }

  /**
   * One placement pass. Returns false when the lock is lost, else how long until a suspect
   * machine's grace ends (null: nothing to wait for but changes).
   */
  private async pass(session: string): Promise<number | false | null> {
    this.dirty = false;
    this.passes++;
    const { consul, kv } = this.deps;
    const now = Date.now();
    const health = this.health ?? (this.health = (await consul.healthService(AGENT_SERVICE)).entries);
    const agents = await listAgents(consul, kv);
    for (const bad of agents.ignored) this.deps.log(`scheduler: ignoring ${bad.error}`);
    const observed = agentViews(agents.records, healthByNode(health));
    for (const o of observed) {
      if (o.agent === "passing") this.unwellSince.delete(o.node);
      else if (!this.unwellSince.has(o.node)) this.unwellSince.set(o.node, now);
    }
    const machines = machineStates(observed, this.unwellSince, now, this.opts.graceMs);
    const previous = await listPlacements(consul, kv);
    for (const p of previous.values()) if (!p.ok) this.deps.log(`scheduler: replacing ${p.error}`);
    const prevDocs = readablePlacements(previous);
    const specs = this.deps.specs();
    const docs = schedule({
      specs: specs.filter((s) => !isFleetStack(s)),
      machines,
      previous: prevDocs,
      scheduler: this.deps.node(),
      now: new Date(now).toISOString(),
    });
    const nodeOfMachine = new Map(observed.flatMap((o) => (o.machineId ? [[o.machineId, o.node] as const] : [])));
    const mirrored = await this.mirror.pass(specs, session, nodeOfMachine, prevDocs, this.deps.node());
    if (!mirrored.ok) return this.lostOrRetry(session);
    for (const [stack, doc] of mirrored.docs) docs.set(stack, doc);
    for (const [stack, doc] of docs) {
      const prev = previous.get(stack);
      const prevDoc = prevDocs.get(stack);
      if (prevDoc && samePlacements(prevDoc, doc) && !this.rewrite) continue;
      if (!(await writePlacement(consul, kv, doc, prev?.index ?? 0, session))) return this.lostOrRetry(session);
      for (const m of doc.moves.filter((x) => x.at === doc.updatedAt))
        this.deps.log(`moved ${m.unit} from ${m.from} to ${m.to ?? "nowhere"}: ${m.reason}`);
      for (const [u, why] of Object.entries(doc.unplaced))
        if (prevDoc?.unplaced[u] !== why) this.deps.log(`cannot place ${u}: ${why}`);
    }
    for (const [stack, prev] of previous) {
      if (docs.has(stack)) continue;
      if (!(await deletePlacement(consul, kv, stack, prev.index, session))) return this.lostOrRetry(session);
    }
    this.rewrite = false;
    const ends = machines.flatMap((m) =>
      m.state === "suspect" ? [(this.unwellSince.get(m.node) ?? now) + this.opts.graceMs - now] : [],
    );
    if (mirrored.pollMs !== null) ends.push(mirrored.pollMs);
    return ends.length ? Math.max(100, Math.min(...ends)) : null;
  }

  /** A transaction failed: either the lock is gone, or a placement changed under us (place again). */
  private async lostOrRetry(session: string): Promise<false | number> {
    if ((await readLeader(this.deps.consul, this.deps.kv)).session !== session) return false;
    this.dirty = true;
    return 0;
  }
}
