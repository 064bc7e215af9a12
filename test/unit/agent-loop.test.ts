/**
 * The agent's loop with its edges replaced: Consul's KV and agent API in memory (the real
 * blocking-watch code runs against it), systemd as a map, real SQLite state in a temporary
 * directory. Every wait is for an event (a write, a job), never a fixed time.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Agent } from "../../agent/agent.js";
import { parseAgentConfig } from "../../agent/config.js";
import { AgentState } from "../../agent/state.js";
import type { SystemdApi, UnitState } from "../../agent/systemd.js";
import { Consul, type KvEntry, type ServiceRegistration } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { TrustStore, generateSigningKeys } from "../../shared/signing.js";
import { StatusReportSchema, type StackSpec, type StatusReport } from "../../shared/spec.js";
import { dep, planUnits, unitText } from "../helpers/specs.js";

/** what happened, in order, across Consul and systemd */
type Event = string;

class MemoryConsul extends Consul {
  readonly kv = new Map<string, { value: Buffer; modifyIndex: number }>();
  private index = 1;
  private readonly changed = new Set<() => void>();
  private readonly putWatchers = new Set<() => void>();
  constructor(private readonly events: Event[]) {
    super({ addr: "http://127.0.0.1:1" });
  }
  private touch(): void {
    this.index++;
    for (const w of [...this.changed, ...this.putWatchers]) w();
  }
  /** something else happened that an `until` may wait for */
  poke(): void {
    for (const w of [...this.putWatchers]) w();
  }
  /** resolves once `test` holds, looked at after each write, delete or poke */
  until(test: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!test()) return;
        this.putWatchers.delete(check);
        resolve();
      };
      this.putWatchers.add(check);
      check();
    });
  }
  private prefixIndex(prefix: string): number {
    let max = 1;
    for (const [k, e] of this.kv) if (k.startsWith(prefix)) max = Math.max(max, e.modifyIndex);
    return Math.max(max, this.deletedAt.get(prefix) ?? 1);
  }
  private readonly deletedAt = new Map<string, number>();
  override async kvListAt(
    prefix: string,
    index: number,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ entries: KvEntry[]; index: number }> {
    while (index > 0 && this.prefixIndex(prefix) === index && !opts.signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.changed.delete(done);
          opts.signal?.removeEventListener("abort", done);
          resolve();
        };
        this.changed.add(done);
        opts.signal?.addEventListener("abort", done);
      });
    }
    if (opts.signal?.aborted) throw new Error("aborted");
    const entries = [...this.kv]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, e]) => ({ key, value: e.value, modifyIndex: e.modifyIndex, createIndex: e.modifyIndex, flags: 0 }));
    return { entries, index: this.prefixIndex(prefix) };
  }
  /** writes of these keys fail (Consul refusing or away) */
  failing: ((key: string) => boolean) | null = null;
  override async kvPut(key: string, value: Buffer | string): Promise<boolean> {
    if (this.failing?.(key)) {
      this.events.push(`failed put ${key}`);
      this.poke();
      throw new Error("Consul is away");
    }
    this.kv.set(key, { value: Buffer.from(value), modifyIndex: this.index + 1 });
    this.events.push(`put ${key}`);
    this.touch();
    return true;
  }
  override async kvDelete(key: string): Promise<boolean> {
    this.kv.delete(key);
    this.events.push(`delete ${key}`);
    // a delete moves the index of every prefix holding the key
    for (let i = key.indexOf("/"); i >= 0; i = key.indexOf("/", i + 1))
      this.deletedAt.set(key.slice(0, i + 1), this.index + 1);
    this.touch();
    return true;
  }
  override async agentSelf(): Promise<{ nodeName: string; datacenter: string; meta: Record<string, string> }> {
    return { nodeName: "h1", datacenter: "dc1", meta: {} };
  }
  override async agentServiceRegister(reg: ServiceRegistration): Promise<void> {
    this.events.push(`register ${reg.ID}`);
  }
  override async agentServiceDeregister(id: string): Promise<void> {
    this.events.push(`deregister ${id}`);
  }
  override async agentCheckUpdate(): Promise<void> {}
  override async agentServices(): Promise<{ id: string; name: string; meta: Record<string, string> }[]> {
    return [];
  }
  override async agentChecks(): Promise<{ id: string; serviceId: string }[]> {
    return [];
  }
  override async agentCheckDeregister(id: string): Promise<void> {
    this.events.push(`deregister check ${id}`);
  }
  report(stack: string): StatusReport | null {
    const e = this.kv.get(`houston/status/h1/${stack}`);
    return e ? StatusReportSchema.parse(JSON.parse(e.value.toString())) : null;
  }
}

/** systemd as a map; a start can be held until the test lets it go, or fail */
class MemorySystemd implements SystemdApi {
  readonly units = new Map<string, UnitState>();
  private readonly listeners = new Set<(unit: string, s: Partial<UnitState>) => void>();
  /** the next start waits for this */
  hold: Promise<void> | null = null;
  failNextStart: Error | null = null;
  onStart: (() => void) | null = null;
  constructor(private readonly record: (e: Event) => void) {}
  async bootMark(): Promise<string> {
    return "1";
  }
  onStateChange(l: (unit: string, s: Partial<UnitState>) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  async reload(): Promise<void> {
    this.record("reload");
  }
  async allLoaded(): Promise<boolean> {
    return true;
  }
  async resetFailed(): Promise<void> {}
  private set(name: string, activeState: string): string {
    this.units.set(name, { loadState: "loaded", activeState, subState: activeState === "active" ? "running" : "dead" });
    for (const l of this.listeners) l(name, { activeState });
    return "done";
  }
  async startUnit(name: string): Promise<string> {
    this.record(`start ${name}`);
    this.onStart?.();
    if (this.hold) await this.hold;
    const err = this.failNextStart;
    this.failNextStart = null;
    if (err) throw err;
    return this.set(name, "active");
  }
  async restartUnit(name: string): Promise<string> {
    return this.startUnit(name);
  }
  async stopUnit(name: string): Promise<string> {
    this.record(`stop ${name}`);
    return this.set(name, "inactive");
  }
  async unitSource(name: string): Promise<{ loadState: string; fragmentPath: string }> {
    return { loadState: this.units.has(name) ? "loaded" : "not-found", fragmentPath: "" };
  }
  async unitStates(names: string[]): Promise<Map<string, UnitState>> {
    return new Map(
      names.map((n) => [n, this.units.get(n) ?? { loadState: "not-found", activeState: "inactive", subState: "dead" }]),
    );
  }
}

const dirs: string[] = [];
const agents: { agent: Agent; state: AgentState }[] = [];
afterEach(async () => {
  for (const { agent, state } of agents.splice(0)) {
    await agent.stop();
    state.close();
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `trusting`: the agent applies only specs signed by a key (none of this test's specs is signed) */
async function setup(opts: { trusting?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "houston-agent-loop-"));
  dirs.push(dir);
  const trust: string[] = [];
  if (opts.trusting) {
    mkdirSync(join(dir, "trust"));
    writeFileSync(join(dir, "trust", "k.pub"), generateSigningKeys().publicPem);
    trust.push(join(dir, "trust"));
  }
  const events: Event[] = [];
  const consul = new MemoryConsul(events);
  const systemd = new MemorySystemd((e) => {
    events.push(e);
    consul.poke();
  });
  const kv = new KvLayout("houston/");
  const state = new AgentState(join(dir, "agent.sqlite"));
  const replaceSpecs = state.replaceSpecs.bind(state);
  let intakes = 0;
  state.replaceSpecs = (specs) => {
    intakes++;
    replaceSpecs(specs);
    consul.poke();
  };
  const cfg = parseAgentConfig(
    ["--node", "h1", "--unit-dir", dir, "--root", dir, "--state-dir", dir, "--no-scheduler", "--no-journal"],
    {},
  );
  const agent = new Agent(cfg, { consul, kv, systemd, state, trust: new TrustStore(trust) });
  agents.push({ agent, state });
  let generation = 0;
  /** writes generation n+1 of stack s: one global unit per version given */
  const publish = async (...versions: string[]): Promise<number> => {
    const units = (
      await Promise.all(versions.map((v) => planUnits(consul, kv, "s", [dep("a", v, unitText("ExecStart=/bin/true"))])))
    ).flat();
    const spec: StackSpec = {
      schema: 1,
      stack: "s",
      generation: ++generation,
      environment: "test",
      createdAt: "",
      deployment: { type: "standalone", name: "s", version: null, group: null },
      units,
    };
    await consul.kvPut(kv.spec("s"), JSON.stringify(spec));
    return generation;
  };
  /** the stack's report once it says `generation` is applied and nothing is left to do */
  const settledAt = async (g: number): Promise<StatusReport> => {
    await consul.until(() => {
      const r = consul.report("s");
      return r !== null && r.generation === g && !r.converging;
    });
    return consul.report("s")!;
  };
  return { agent, consul, systemd, kv, state, events, publish, settledAt, intakes: () => intakes };
}

describe("the agent's loop", () => {
  it("carries out a spec and reports it settled", async () => {
    const h = await setup();
    const g = await h.publish("1");
    await h.agent.start();
    const r = await h.settledAt(g);
    expect(r.units).toEqual([{ name: "s-a@1.service", activeState: "active", subState: "running" }]);
    expect(r.errors).toEqual([]);
    expect(h.events.filter((e) => e.startsWith("start"))).toEqual(["start s-a@1.service"]);
  });

  it("changes during a pass make one more pass, with the latest spec", async () => {
    const h = await setup();
    await h.agent.start();
    let release = (): void => {};
    h.systemd.hold = new Promise((r) => (release = r));
    const started = new Promise<void>((r) => (h.systemd.onStart = r));
    await h.publish("1");
    await started;
    const passes = h.agent.metrics.passes;
    await h.publish("2");
    const g = await h.publish("3");
    // the watch has taken both in while the pass still waits for its start
    await h.consul.until(() => h.state.specs()[0]?.generation === g);
    h.systemd.hold = null;
    release();
    const r = await h.settledAt(g);
    expect(r.units.map((u) => u.name)).toEqual(["s-a@3.service"]);
    expect(h.agent.metrics.passes).toBe(passes + 1);
    expect(h.events.filter((e) => e.startsWith("start"))).toEqual(["start s-a@1.service", "start s-a@3.service"]);
  });

  it("a failed step: reported converging with its error, retried, then settled", async () => {
    const h = await setup();
    await h.agent.start();
    h.systemd.failNextStart = new Error("boom");
    const g = await h.publish("1");
    await h.consul.until(() => (h.consul.report("s")?.errors.length ?? 0) > 0);
    expect(h.consul.report("s")).toMatchObject({ converging: true, generation: null });
    expect(h.consul.report("s")?.errors[0]).toContain("boom");
    const r = await h.settledAt(g); // the retry, after the pass runner's backoff
    expect(r.errors).toEqual([]);
    expect(h.agent.metrics.failures).toBe(1);
  });

  it("a pass that only removes units reports before systemd's reload", async () => {
    const h = await setup();
    await h.agent.start();
    await h.settledAt(await h.publish("1"));
    h.events.length = 0;
    await h.consul.kvDelete(h.kv.spec("s"));
    await h.consul.until(() => h.events.includes("reload"));
    const at = (e: string) => h.events.indexOf(e);
    expect(at("stop s-a@1.service")).toBeGreaterThan(-1);
    expect(at("delete houston/status/h1/s")).toBeGreaterThan(at("stop s-a@1.service"));
    expect(at("reload")).toBeGreaterThan(at("delete houston/status/h1/s"));
  });

  it("says a refused spec once in its log, not at each change under stacks/", async () => {
    const h = await setup({ trusting: true });
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      await h.agent.start();
      const g = await h.publish("1");
      await h.consul.until(() => h.consul.report("s")?.errors.length === 1);
      // another change under stacks/: the spec is taken in (and refused) again
      const intakes = h.intakes();
      await h.consul.kvPut(`${h.kv.stacks}other/notes`, "x");
      await h.consul.until(() => h.intakes() > intakes);
      await h.agent.stop();
      const refusals = lines.filter((l) => l.includes("refused"));
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toMatch(
        new RegExp(
          `refused generation ${g} of s: not applying .* the spec is not signed and this agent trusts only signed specs`,
        ),
      );
    } finally {
      write.mockRestore();
    }
  });

  it("a report Consul did not take is sent again later by the reporter (the pass succeeded)", async () => {
    const h = await setup();
    await h.agent.start();
    h.consul.failing = (key) => key.startsWith("houston/status/");
    const g = await h.publish("1");
    await h.consul.until(() => h.events.includes("start s-a@1.service"));
    await h.consul.until(() => h.events.includes("failed put houston/status/h1/s"));
    h.consul.failing = null;
    await h.settledAt(g); // the retry, after the reporter's backoff
    // every pass succeeded (a report that fails does not fail the pass): no pass retry brought it
    expect(h.agent.metrics.failures).toBe(0);
  });
});
