/**
 * Control-plane scale, as a LOAD MODEL: N real agents (the agent code: watches, acceptance,
 * targeting, reconcile, SQLite, reports, registration) in one process, each with its own Consul
 * client, against one real Consul (a dev agent on loopback), with only the systemd edge replaced
 * by an in-memory model (units start at once). One write of a spec with a global unit; measured:
 * write → every agent's report of it active (p50/p99), HTTP requests and bytes the agents sent
 * and received meanwhile, CPU of this process and of Consul. Beside it, the floor: N plain
 * blocking queries on the spec prefix woken by one write, each then writing one status key.
 * All agents talk to one Consul agent from one address: its limits.http_max_conns_per_client
 * (default 200) is raised to 10,000, and the scheduler role is off (one Consul node: placement of
 * singletons needs a node per machine, so only the global deploy is modelled).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../agent/agent.js";
import { parseAgentConfig } from "../../agent/config.js";
import { AgentState } from "../../agent/state.js";
import type { SystemdApi, UnitState } from "../../agent/systemd.js";
import { writeSpec } from "../../shared/stores/specs.js";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { TrustStore } from "../../shared/signing.js";
import { SCHEMA_VERSION, type StackSpec } from "../../shared/spec.js";
import { ROOT } from "../../test/harness/paths.js";

/** systemd as a map: every job succeeds at once (a load model, not a host) */
class MemorySystemd implements SystemdApi {
  private readonly units = new Map<string, UnitState>();
  private readonly listeners = new Set<(unit: string, s: Partial<UnitState>) => void>();
  async bootMark(): Promise<string> {
    return "1";
  }
  onStateChange(l: (unit: string, s: Partial<UnitState>) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  async reload(): Promise<void> {}
  /** a new unit is known at once here, as systemd (v246 on) loads a new file when first asked */
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
    return this.set(name, "active");
  }
  async restartUnit(name: string): Promise<string> {
    return this.set(name, "active");
  }
  async stopUnit(name: string): Promise<string> {
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

interface Counted {
  consul: Consul;
  requests: number;
  bytes: number;
  /** when this agent's report of the unit active (and nothing left to do) was written */
  reportedAt: number;
}

function counted(addr: string, kv: KvLayout): Counted {
  const c: Counted = { consul: new Consul({ addr }), requests: 0, bytes: 0, reportedAt: 0 };
  const request = c.consul.request.bind(c.consul);
  c.consul.request = async (method, path, opts) => {
    c.requests++;
    const res = await request(method, path, opts);
    c.bytes += res.body.length + (opts?.body?.length ?? 0);
    const body = opts?.body === undefined ? "" : opts.body.toString();
    if (
      method === "PUT" &&
      path.includes(`/kv/${kv.status}`) &&
      /"activeState": "active"/.test(body) &&
      /"converging": false/.test(body)
    )
      c.reportedAt = Date.now();
    return res;
  };
  return c;
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? 0;

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  const hz = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  return (Number(f[11]) + Number(f[12])) / hz;
}

export interface ScaleResult {
  agents: number;
  reportedP50Ms: number;
  reportedP99Ms: number;
  requestsPerDeploy: number;
  requestsPerAgent: number;
  mbMoved: number;
  processCpuS: number;
  consulCpuS: number;
  floorWokenP99Ms: number;
  floorWrittenP99Ms: number;
  ratioToFloor: number;
}

async function startConsul(): Promise<{ addr: string; pid: number; dir: string }> {
  const port = 18500 + Math.floor(Math.random() * 500) * 3;
  const out = execFileSync(
    "bash",
    [join(ROOT, "scripts", "consul-dev.sh"), String(port), "-hcl", "limits { http_max_conns_per_client = 10000 }"],
    {
      env: { ...process.env, CONSUL_BIN: join(ROOT, ".consul", "bin", "consul") },
    },
  ).toString();
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, "m").exec(out)?.[1] ?? "";
  return { addr: get("CONSUL_HTTP_ADDR"), pid: Number(get("CONSUL_PID")), dir: get("CONSUL_DIR") };
}

async function floor(addr: string, n: number, kv: KvLayout): Promise<{ woken: number[]; written: number[] }> {
  const prefix = `${kv.prefix}floor/`;
  const c = new Consul({ addr });
  const { index } = await c.kvListAt(prefix, 0);
  let t0 = 0;
  const woken: number[] = [];
  const written: number[] = [];
  const clients = Array.from({ length: n }, () => new Consul({ addr }));
  const waits = clients.map(async (cl, i) => {
    await cl.kvListAt(prefix, index, { wait: "5m" });
    woken.push(Date.now() - t0);
    await cl.kvPut(`${kv.prefix}floor-status/${i}`, "x");
    written.push(Date.now() - t0);
  });
  await new Promise((r) => setTimeout(r, 1000 + n)); // every query parked (a bench, not a test)
  t0 = Date.now();
  await c.kvPut(`${prefix}spec`, "x");
  await Promise.all(waits);
  return { woken, written };
}

export async function scale(sizes: number[]): Promise<ScaleResult[]> {
  const consul = await startConsul();
  const out: ScaleResult[] = [];
  try {
    for (const n of sizes) {
      const kv = new KvLayout(`scale${n}/`);
      const work = mkdtempSync(join(tmpdir(), "houston-scale-"));
      const agents: { agent: Agent; c: Counted; state: AgentState }[] = [];
      for (let i = 0; i < n; i++) {
        const cfg = {
          ...parseAgentConfig([], {}),
          node: `s${i}`,
          prefix: kv.prefix,
          root: work,
          unitDir: mkdtempSync(join(work, "u")),
          journal: false,
          scheduler: false,
        };
        const c = counted(consul.addr, kv);
        const state = new AgentState(":memory:");
        const agent = new Agent(cfg, {
          consul: c.consul,
          kv,
          systemd: new MemorySystemd(),
          state,
          trust: new TrustStore([]),
        });
        agents.push({ agent, c, state });
      }
      const quiet = process.stderr.write.bind(process.stderr);
      process.stderr.write = (() => true) as typeof process.stderr.write; // 1,000 agents' logs
      try {
        await Promise.all(agents.map((a) => a.agent.start()));
        await new Promise((r) => setTimeout(r, 2000 + n * 2)); // registrations and first reports settle
        for (const a of agents) ((a.c.requests = 0), (a.c.bytes = 0), (a.c.reportedAt = 0));
        const cpu0 = process.cpuUsage();
        const consul0 = cpuSeconds(consul.pid);
        const spec: StackSpec = {
          schema: SCHEMA_VERSION,
          stack: "wide",
          generation: 1,
          environment: "bench",
          deployment: { type: "global", name: "wide", version: null, group: null },
          createdAt: new Date().toISOString(),
          units: [
            {
              name: "wide-beat@1.service",
              stack: "wide",
              component: "beat",
              group: null,
              version: "1",
              role: "global",
              text: "[Service]\nExecStart=/bin/sleep infinity\n",
              placements: [{ global: true, metadata: {} }],
            },
          ],
        };
        const t0 = Date.now();
        await writeSpec(agents[0]!.c.consul, kv, spec, { modifyIndex: 0, signer: null });
        const deadline = t0 + 300_000;
        while (agents.some((a) => a.c.reportedAt < t0) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        const missing = agents.filter((a) => a.c.reportedAt < t0).length;
        if (missing) throw new Error(`${missing} of ${n} agents did not report the unit active within 300 s`);
        const lat = agents.map((a) => a.c.reportedAt - t0);
        const cpu = process.cpuUsage(cpu0);
        const requests = agents.reduce((s, a) => s + a.c.requests, 0);
        const bytes = agents.reduce((s, a) => s + a.c.bytes, 0);
        const consulCpu = cpuSeconds(consul.pid) - consul0;
        await Promise.all(agents.map((a) => a.agent.stop()));
        const f = await floor(consul.addr, n, kv);
        const p99 = pct(lat, 99);
        out.push({
          agents: n,
          reportedP50Ms: pct(lat, 50),
          reportedP99Ms: p99,
          requestsPerDeploy: requests,
          requestsPerAgent: requests / n,
          mbMoved: bytes / 1048576,
          processCpuS: (cpu.user + cpu.system) / 1e6,
          consulCpuS: consulCpu,
          floorWokenP99Ms: pct(f.woken, 99),
          floorWrittenP99Ms: pct(f.written, 99),
          ratioToFloor: p99 / Math.max(1, pct(f.written, 99)),
        });
      } finally {
        process.stderr.write = quiet;
        for (const a of agents) a.state.close();
        rmSync(work, { recursive: true, force: true });
      }
    }
  } finally {
    process.kill(consul.pid);
    rmSync(consul.dir, { recursive: true, force: true });
  }
  return out;
}
