/**
 * A production-shaped fleet on one machine, for the demo, the benchmarks and the end-to-end tests:
 *  - real systemd test hosts (hosts.ts, scripts/testhost.sh);
 *  - Consul server(s) on the machine, bound to the test bridge (10.77.0.1) and loopback
 *    (consul-servers.ts; with TLS, tls.ts; with ACLs, acl.ts);
 *  - inside each host, as systemd units of that host: a Consul client agent (own node name and
 *    -node-meta, joined over the test network) and the Houston agent (agent-install.ts);
 *  - with `fleetd`, etcd on the machine and fleetd in every host (fleetd.ts).
 * LocalFleet composes those pieces: boot in order, stop everything, and record what runs so that
 * `LocalFleet.down(name)` can clean up after a killed process (fleet-state.ts).
 */
import { rmSync } from "node:fs";
import type { Consul } from "../../shared/consul.js";
import { Fleet } from "../../shared/fleet.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { agentTokens } from "./acl.js";
import { installAgent } from "./agent-install.js";
import { ConsulServerExited, ConsulServers } from "./consul-servers.js";
import { FLEET_API_PORT, LocalFleetd } from "./fleetd.js";
import { stateFile, tearDown, writeState } from "./fleet-state.js";
import {
  BRIDGE_IP,
  TESTHOST_PODMAN,
  bootedHost,
  setLink,
  shell,
  startHost,
  testhost,
  type FleetHost,
  type HostSpec,
} from "./hosts.js";
import type { TlsFiles } from "./tls.js";

export interface FleetOptions {
  hosts: HostSpec[];
  /** with a name, what is running is recorded in TESTHOST_BASE/<name>.fleet.json so that
   * `LocalFleet.down(name)` can clean up after a process that was killed */
  name?: string;
  prefix?: string;
  /** the server's HTTP API over TLS only, verifying client certificates (certs made by `consul tls`) */
  tls?: boolean;
  /** ACLs on with default deny; `acl` is the management token; each host's agent gets its own
   * least-privilege token (houston-agent-<node> policy) */
  acl?: string;
  /** with `acl`: the stacks whose services (NAME, NAME-*) the agents may register besides houston-* */
  aclStacks?: string[];
  /** Consul servers on the machine (default 1); with 3, a real Raft cluster whose leader can be lost */
  servers?: number;
  /** run the agent from this OCI archive (npm run image) with systemd/houston-agent-container.service */
  agentImage?: string;
  log?: (message: string) => void;
  /** extra settings for every agent (lines of /etc/houston/agent.env), e.g. HOUSTON_SCHEDULER_GRACE */
  agentEnv?: Record<string, string>;
  /** a real fleetd in every host (fleetd.ts), with etcd on this machine */
  fleetd?: boolean;
}

export class LocalFleet {
  readonly hosts: FleetHost[] = [];
  readonly kv: KvLayout;
  consul!: Consul;
  consulAddr = "";
  private servers: ConsulServers | null = null;
  private readonly log: (m: string) => void;
  /** with `fleetd`: etcd on this machine (fleetd runs in the hosts) */
  fleetd: LocalFleetd | null = null;

  private constructor(private readonly opts: FleetOptions) {
    this.kv = new KvLayout(opts.prefix);
    this.log = opts.log ?? (() => undefined);
  }

  static async start(opts: FleetOptions): Promise<LocalFleet> {
    const fleet = new LocalFleet(opts);
    try {
      await fleet.boot();
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  private async boot(): Promise<void> {
    // hosts first: the first one creates the bridge the server binds to
    for (const spec of this.opts.hosts) {
      await startHost(spec.name);
      this.record([spec.name]);
      const { host, bootMs } = bootedHost(spec);
      this.hosts.push(host);
      this.log(`booted test host ${host.name} (${host.ip}) in ${bootMs} ms`);
    }
    // a port probed free can be taken before the server binds it (tests run side by side): new ports then
    for (let attempt = 1; ; attempt++) {
      this.servers = await ConsulServers.prepare({
        count: this.opts.servers ?? 1,
        tls: this.opts.tls === true,
        acl: this.opts.acl,
      });
      try {
        await this.startConsulServer();
        break;
      } catch (err) {
        await this.servers.killAll();
        if (!(err instanceof ConsulServerExited) || attempt >= 3) throw err;
        process.stderr.write(`fleet: ${err.message}\n(trying other ports)\n`);
      }
    }
    if (this.opts.fleetd) {
      this.fleetd = await LocalFleetd.startEtcd(BRIDGE_IP);
      this.record();
    }
    const hostNames = this.hosts.map((h) => h.name);
    const tokens = this.opts.acl
      ? await agentTokens(this.consul, this.kv, hostNames, this.opts.aclStacks ?? [])
      : new Map<string, string>();
    for (const h of this.hosts) {
      installAgent(h, {
        consulUnit: this.consulServers.clientUnit(h),
        prefix: this.kv.prefix,
        token: tokens.get(h.name),
        agentImage: this.opts.agentImage,
        agentEnv: this.opts.agentEnv,
      });
      this.fleetd?.installHost(h);
    }
    await Promise.all(this.hosts.map((h) => this.shell(h.name, "systemctl", "daemon-reload")));
    if (this.opts.agentImage) {
      for (const h of this.hosts)
        await this.shell(
          h.name,
          "env",
          "-u",
          "CONTAINERS_CONF",
          ...TESTHOST_PODMAN,
          "load",
          "--quiet",
          "-i",
          "/var/lib/houston/agent.oci.tar",
        );
    }
    await Promise.all(
      this.hosts.map((h) =>
        this.shell(
          h.name,
          "systemctl",
          "start",
          "houston-consul.service",
          "houston-agent.service",
          ...(this.fleetd ? ["fleet.socket", "fleet.service"] : []),
        ),
      ),
    );
    if (this.fleetd) await LocalFleetd.waitMachines(new Fleet(this.fleetEndpoint), this.hosts.length);
    await this.waitForAgents();
  }

  private get consulServers(): ConsulServers {
    if (!this.servers) throw new Error("the fleet's Consul servers are not prepared yet");
    return this.servers;
  }

  /** fleet's API on the first host (TCP, as fleet's docs deploy it) */
  get fleetEndpoint(): string {
    return `http://${this.hosts[0]?.ip ?? ""}:${FLEET_API_PORT}`;
  }

  /** The HTTP address of each server (the controller may talk to any of them). */
  get serverAddrs(): string[] {
    return this.consulServers.addrs;
  }

  /** with `tls`: the files a client needs (CA, client certificate and key) */
  get tlsFiles(): TlsFiles | null {
    return this.servers?.tlsFiles ?? null;
  }

  /** PID of the first Consul server on this machine (for its memory), 0 if none */
  get serverPid(): number {
    return this.servers?.pids[0] ?? 0;
  }

  /** Starts (or restarts, with the same data dirs: KV survives) the Consul server(s) not running. */
  async startConsulServer(): Promise<void> {
    const servers = this.consulServers;
    await servers.spawnMissing();
    this.record();
    this.consulAddr = servers.addrs[0] ?? "";
    this.consul = servers.client();
    await servers.waitLeader(this.consul, this.hosts, (m) => process.stderr.write(`fleet: ${m}\n`));
    this.log(`Consul server up at ${this.consulAddr} (UI ${this.consulAddr}/ui/)`);
  }

  async stopConsulServer(): Promise<void> {
    await this.servers?.killAll();
  }

  /** Kills one server by PID (SIGKILL: no leave, as a crash). */
  async killServer(index: number): Promise<void> {
    await this.consulServers.kill(index);
  }

  /** Which server is the Raft leader now (by its server port), or -1. */
  async leaderIndex(via: Consul = this.consul): Promise<number> {
    return this.consulServers.leaderIndex(via);
  }

  /** Every agent has registered (agents/<node> in KV) and its houston-agent check passes. */
  async waitForAgents(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const want = new Set(this.hosts.map((h) => h.name));
    for (;;) {
      try {
        const records = await this.consul.kvKeys(this.kv.agents);
        const { entries } = await this.consul.healthService("houston-agent", { passing: true });
        const passing = new Set(entries.map((e) => e.Node.Node));
        if (records.length >= want.size && [...want].every((n) => passing.has(n))) return;
      } catch {
        /* server settling */
      }
      if (Date.now() > deadline) throw new Error(`agents did not come up within ${timeoutMs / 1000}s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  host(name: string): FleetHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Reboots a host: poweroff, then the same root boots again (its files survive, /run does not). */
  async reboot(name: string): Promise<void> {
    await testhost("reboot", name);
  }

  /** Cuts a host's power: every process of it dies at once; it stays off until powerOn(). */
  async powerOff(name: string): Promise<void> {
    await testhost("poweroff", name);
  }

  /** Boots a host that was powered off (its disk kept, /run empty), as after a reboot. */
  async powerOn(name: string): Promise<void> {
    await testhost("poweron", name);
  }

  /** Cuts a host off the test network (its side of the veth goes down): it runs on, alone. */
  async disconnect(name: string): Promise<void> {
    await setLink(name, false);
  }

  async reconnect(name: string): Promise<void> {
    await setLink(name, true);
  }

  /** Runs a command inside a host (all its namespaces). */
  async shell(name: string, ...cmd: string[]): Promise<string> {
    return shell(name, ...cmd);
  }

  /** ActiveState of a unit inside a host, as systemctl says. */
  async unitState(host: string, unit: string): Promise<string> {
    try {
      return (await this.shell(host, "systemctl", "show", "-p", "ActiveState", "--value", unit)).trim();
    } catch {
      return "unknown";
    }
  }

  /** Written as soon as there is something to clean up (each host booted, the server started). */
  private record(booting: string[] = []): void {
    if (!this.opts.name) return;
    const s = this.servers;
    writeState(this.opts.name, {
      consulPids: s?.pids ?? [],
      dataDir: s?.dataDir ?? "",
      tlsDir: s?.tlsDir ?? "",
      hosts: [...new Set([...this.hosts.map((h) => h.name), ...booting])],
      ...(this.fleetd ? { etcdPid: this.fleetd.etcdPid, etcdDir: this.fleetd.dataDir } : {}),
    });
  }

  /** Removes what a fleet started under `name` left behind (its process was killed): hosts, Consul server, data. */
  static async down(name: string): Promise<string[]> {
    return tearDown(name);
  }

  async stop(): Promise<void> {
    await this.stopConsulServer().catch(() => undefined);
    await this.fleetd?.stop().catch(() => undefined);
    await Promise.all(this.opts.hosts.map((h) => testhost("stop", h.name).catch(() => undefined)));
    if (this.servers) rmSync(this.servers.dataDir, { recursive: true, force: true });
    if (this.opts.name) rmSync(stateFile(this.opts.name), { force: true });
    if (this.servers?.tlsDir) rmSync(this.servers.tlsDir, { recursive: true, force: true });
  }
}
