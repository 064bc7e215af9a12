/**
 * A production-shaped fleet on one machine, for the demo and the end-to-end tests:
 *  - real systemd test hosts (scripts/testhost.sh: overlay root, private /tmp and /run, own netns);
 *  - a Consul server on the machine, bound to the test bridge (10.77.0.1) and loopback;
 *  - inside each host, as systemd units of that host: a Consul client agent (own node name and
 *    -node-meta, joined over the test network) and the Houston agent (systemd/houston-agent.service).
 * The agent bundle and consul binary are copied into each host's overlay (/opt/...), since a
 * checkout under /tmp would be invisible inside (the hosts' /tmp is private).
 */
import { execFile, spawn } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { createToken, upsertPolicy } from "../../shared/consul-acl.js";
import { agentPolicy, rulesHcl } from "../../controller/acl/policies.js";
import { freePortRange } from "./ports.js";
import { killAndWait } from "./process.js";
import { Fleet } from "../../shared/fleet.js";
import { FLEET_API_PORT, LocalFleetd, isEtcd } from "./fleetd.js";

const run = promisify(execFile);
export const REPO = join(import.meta.dirname, "..", "..");
const TESTHOST = join(REPO, "scripts", "testhost.sh");
const CONSUL_BIN = join(REPO, ".consul", "bin", "consul");
const BRIDGE_IP = "10.77.0.1";
/** podman inside a test host: its store on the host's private tmpfs, runc, no systemd cgroups */
export const TESTHOST_PODMAN = [
  "podman",
  "--root",
  "/tmp/ps",
  "--runroot",
  "/run/pr",
  "--runtime",
  "runc",
  "--cgroup-manager",
  "cgroupfs",
  "--events-backend",
  "file",
];
export const TESTHOST_BASE = process.env.TESTHOST_BASE ?? "/tmp/houston-th";
// fast failure detection, so a stopped host shows up quickly (every agent must agree)
const GOSSIP = 'gossip_lan { probe_interval = "200ms" probe_timeout = "100ms" suspicion_mult = 2 }';

export interface HostSpec {
  name: string;
  meta: Record<string, string>;
}

export interface FleetHost {
  name: string;
  ip: string;
  root: string;
  dbus: string;
  meta: Record<string, string>;
}

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
  /** Consul servers on the machine (default 1); with 3, a real Raft cluster whose leader can be lost */
  servers?: number;
  /** run the agent from this OCI archive (npm run image) with systemd/houston-agent-container.service */
  agentImage?: string;
  log?: (message: string) => void;
  /** extra settings for every agent (lines of /etc/houston/agent.env), e.g. HOUSTON_SCHEDULER_GRACE */
  agentEnv?: Record<string, string>;
  /** a real fleetd in every host (test/harness/fleetd.ts), with etcd on this machine */
  fleetd?: boolean;
}

async function testhost(...args: string[]): Promise<string> {
  const { stdout } = await run("bash", [TESTHOST, ...args], {
    env: { ...process.env, TESTHOST_BASE },
    maxBuffer: 1 << 20,
  });
  return stdout;
}

function readEnv(name: string): Record<string, string> {
  const text = readFileSync(join(TESTHOST_BASE, name, "env"), "utf8");
  return Object.fromEntries(
    text
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

interface FleetState {
  etcdPid?: number;
  etcdDir?: string;
  consulPids: number[];
  dataDir: string;
  tlsDir: string;
  hosts: string[];
}

/** Only a Consul process is killed by pid from a state file (the pid may have been reused). */
function isConsul(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]?.endsWith("consul") === true;
  } catch {
    return false;
  }
}

export class LocalFleet {
  readonly hosts: FleetHost[] = [];
  readonly kv: KvLayout;
  consul!: Consul;
  consulAddr = "";
  /** with `tls`: the files a client needs (CA, client certificate and key) */
  tlsFiles: { ca: string; cert: string; key: string } | null = null;
  /** one per server (0: not running) */
  private consulPids: number[] = [];
  private port = 0;
  private dataDir = "";
  private tlsDir = "";
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
    for (const h of this.opts.hosts) {
      // a host left over from a killed run would block the start; one fleet per name at a time
      if (existsSync(join(TESTHOST_BASE, h.name))) await testhost("stop", h.name);
      await testhost("start", h.name);
      this.record([h.name]);
      const env = readEnv(h.name);
      this.hosts.push({
        name: h.name,
        ip: env.TESTHOST_IP ?? "",
        root: env.TESTHOST_ROOT ?? "",
        dbus: env.DBUS_SYSTEM_BUS_ADDRESS ?? "",
        meta: h.meta,
      });
      this.log(`booted test host ${h.name} (${env.TESTHOST_IP}) in ${env.TESTHOST_BOOT_MS} ms`);
    }
    this.port = await freePortRange(["127.0.0.1", BRIDGE_IP, BRIDGE_IP], 21000, 15000, "the Consul server");
    this.dataDir = mkdtempSync(join(tmpdir(), "houston-consul-server-"));
    await this.startConsulServer();
    if (this.opts.fleetd) {
      this.fleetd = await LocalFleetd.startEtcd(BRIDGE_IP);
      this.record();
    }
    const tokens = this.opts.acl ? await this.agentTokens() : new Map<string, string>();
    for (const h of this.hosts) {
      this.installHost(h, tokens.get(h.name));
      this.fleetd?.installHost(h);
    }
    await Promise.all(this.hosts.map((h) => this.shell(h.name, "systemctl", "daemon-reload")));
    if (this.opts.agentImage) {
      const podman = TESTHOST_PODMAN;
      for (const h of this.hosts)
        await this.shell(
          h.name,
          "env",
          "-u",
          "CONTAINERS_CONF",
          ...podman,
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

  /** fleet's API on the first host (TCP, as fleet's docs deploy it) */
  get fleetEndpoint(): string {
    return `http://${this.hosts[0]?.ip ?? ""}:${FLEET_API_PORT}`;
  }

  private get servers(): number {
    return this.opts.servers ?? 1;
  }

  /** The HTTP address of each server (the controller may talk to any of them). */
  get serverAddrs(): string[] {
    return Array.from(
      { length: this.servers },
      (_, i) => `${this.opts.tls ? "https" : "http"}://127.0.0.1:${this.port + 3 * i}`,
    );
  }

  /** Starts (or restarts, with the same data dirs: KV survives) the Consul server(s) not running. */
  async startConsulServer(): Promise<void> {
    const p = this.port;
    const tlsArgs = this.opts.tls ? await this.tlsConfig() : [];
    for (let i = 0; i < this.servers; i++) {
      if (this.consulPids[i]) continue;
      const b = p + 3 * i;
      const many = this.servers > 1;
      const joins = many
        ? Array.from({ length: this.servers }, (_, j) => j)
            .filter((j) => j !== i)
            .flatMap((j) => ["-retry-join", `${BRIDGE_IP}:${p + 3 * j + 1}`])
        : [];
      const dataDir = many ? join(this.dataDir, `server-${i + 1}`) : this.dataDir;
      mkdirSync(dataDir, { recursive: true });
      const child = spawn(
        CONSUL_BIN,
        [
          "agent",
          "-server",
          "-bootstrap-expect",
          String(this.servers),
          "-node",
          many ? `houston-server-${i + 1}` : "houston-server",
          "-bind",
          BRIDGE_IP,
          "-client",
          `127.0.0.1 ${BRIDGE_IP}`,
          ...(this.opts.tls ? [] : ["-http-port", String(b)]),
          "-serf-lan-port",
          String(b + 1),
          "-server-port",
          String(b + 2),
          ...joins,
          "-retry-interval",
          "1s",
          "-dns-port",
          "-1",
          "-grpc-port",
          "-1",
          "-serf-wan-port",
          "-1",
          "-data-dir",
          dataDir,
          "-hcl",
          "disable_update_check = true",
          "-hcl",
          "performance { raft_multiplier = 1 }",
          "-hcl",
          GOSSIP,
          "-ui",
          ...tlsArgs,
          ...(this.opts.acl
            ? [
                "-hcl",
                `acl { enabled = true default_policy = "deny" enable_token_persistence = true tokens { master = "${this.opts.acl}" agent = "${this.opts.acl}" } }`,
              ]
            : []),
        ],
        { detached: true, stdio: ["ignore", "ignore", "ignore"] },
      );
      child.unref();
      this.consulPids[i] = child.pid ?? 0;
    }
    this.record();
    this.consulAddr = `${this.opts.tls ? "https" : "http"}://127.0.0.1:${p}`;
    const t = this.tlsFiles;
    this.consul = new Consul({
      addr: this.consulAddr,
      token: this.opts.acl,
      tls: t ? { caFile: t.ca, certFile: t.cert, keyFile: t.key } : {},
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await this.consul.request("GET", "/v1/status/leader");
        if (res.body.toString().trim().length > 2) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error("Consul server did not elect itself leader within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    // after a restart, join the hosts' clients at once (serf alone retries failed members every 30 s)
    for (const h of this.hosts) await this.consul.request("PUT", `/v1/agent/join/${h.ip}:8301`).catch(() => undefined);
    this.log(`Consul server up at ${this.consulAddr} (UI ${this.consulAddr}/ui/)`);
  }

  /** CA, server and client certificates from `consul tls`; HTTPS only, client certificates verified (RPC stays plain). */
  private async tlsConfig(): Promise<string[]> {
    const dir = join(this.dataDir, "..", `${this.dataDir.split("/").at(-1) ?? "consul"}-tls`);
    if (!existsSync(join(dir, "consul-agent-ca.pem"))) {
      mkdirSync(dir, { recursive: true });
      await run(CONSUL_BIN, ["tls", "ca", "create"], { cwd: dir });
      await run(CONSUL_BIN, ["tls", "cert", "create", "-server", "-dc", "dc1"], { cwd: dir });
      await run(CONSUL_BIN, ["tls", "cert", "create", "-client", "-dc", "dc1"], { cwd: dir });
    }
    this.tlsDir = dir;
    this.tlsFiles = {
      ca: join(dir, "consul-agent-ca.pem"),
      cert: join(dir, "dc1-client-consul-0.pem"),
      key: join(dir, "dc1-client-consul-0-key.pem"),
    };
    return [
      "-hcl",
      `ports { http = -1 https = ${this.port} }`,
      "-hcl",
      `ca_file = "${join(dir, "consul-agent-ca.pem")}"`,
      "-hcl",
      `cert_file = "${join(dir, "dc1-server-consul-0.pem")}"`,
      "-hcl",
      `key_file = "${join(dir, "dc1-server-consul-0-key.pem")}"`,
      "-hcl",
      "verify_incoming_https = true",
    ];
  }

  async stopConsulServer(): Promise<void> {
    for (let i = 0; i < this.consulPids.length; i++) await this.killServer(i);
  }

  /** Kills one server by PID (SIGKILL: no leave, as a crash). */
  async killServer(index: number): Promise<void> {
    const pid = this.consulPids[index];
    if (!pid) return;
    await killAndWait(pid, "SIGKILL");
    this.consulPids[index] = 0;
  }

  /** Which server is the Raft leader now (by its server port), or -1. */
  async leaderIndex(via: Consul = this.consul): Promise<number> {
    const res = await via.request("GET", "/v1/status/leader");
    const m = /:(\d+)"?\s*$/.exec(res.body.toString().trim());
    return m ? (Number(m[1]) - this.port - 2) / 3 : -1;
  }

  /** One token per host with that node's agent policy (what `houston acl bootstrap-tokens` makes). */
  private async agentTokens(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const h of this.hosts) {
      const p = agentPolicy(this.kv, h.name);
      await upsertPolicy(this.consul, { name: p.name, description: p.description, rules: rulesHcl(p.rules) });
      out.set(h.name, (await createToken(this.consul, `test agent ${h.name}`, [p.name])).secretId);
    }
    return out;
  }

  private installHost(h: FleetHost, agentToken?: string): void {
    const opt = join(h.root, "opt", "houston");
    mkdirSync(join(opt, "node_modules"), { recursive: true });
    copyFileSync(join(REPO, "dist", "houston-agent.js"), join(opt, "houston-agent.js"));
    copyFileSync(join(REPO, "dist", "package.json"), join(opt, "package.json"));
    for (const mod of ["better-sqlite3", "bindings", "file-uri-to-path"]) {
      cpSync(join(REPO, "node_modules", mod), join(opt, "node_modules", mod), {
        recursive: true,
        filter: (src) => !src.includes(`${mod}/deps`) && !src.includes("/src/") && !src.endsWith(".o"),
      });
    }
    copyFileSync(CONSUL_BIN, join(opt, "consul"));
    const units = join(h.root, "etc", "systemd", "system");
    const meta = Object.entries(h.meta)
      .map(([k, v]) => `-node-meta ${k}:${v}`)
      .join(" ");
    writeFileSync(
      join(units, "houston-consul.service"),
      [
        "[Unit]",
        `Description=Consul client agent of test host ${h.name}`,
        "",
        "[Service]",
        `ExecStart=/opt/houston/consul agent -node ${h.name} ${meta} -bind ${h.ip} -client 127.0.0.1 ${Array.from({ length: this.servers }, (_, i) => `-retry-join ${BRIDGE_IP}:${this.port + 3 * i + 1}`).join(" ")} -retry-interval 1s -data-dir /var/lib/consul -dns-port -1 -grpc-port -1 -hcl "disable_update_check = true" -hcl "leave_on_terminate = true" -hcl '${GOSSIP}'${this.opts.acl ? ` -hcl 'acl { enabled = true default_policy = "deny" tokens { agent = "${this.opts.acl}" } }'` : ""}`,
        "Restart=on-failure",
        "",
      ].join("\n"),
    );
    mkdirSync(join(h.root, "etc", "houston"), { recursive: true });
    // enabled, so that a reboot of the host starts them again (the hosts boot testhost.target)
    mkdirSync(join(units, "testhost.target.wants"), { recursive: true });
    for (const u of ["houston-consul.service", "houston-agent.service"])
      symlinkSync(`../${u}`, join(units, "testhost.target.wants", u));
    if (this.opts.agentImage) {
      // the production container unit, under the agent's usual name; podman inside a test host keeps
      // its store on the host's private tmpfs and uses runc without a pids controller (recipe notes)
      copyFileSync(join(REPO, "systemd", "houston-agent-container.service"), join(units, "houston-agent.service"));
      mkdirSync(join(h.root, "var", "lib", "houston"), { recursive: true });
      copyFileSync(this.opts.agentImage, join(h.root, "var", "lib", "houston", "agent.oci.tar"));
      const lim = "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768";
      const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
      writeFileSync(
        join(h.root, "etc", "houston", "container.env"),
        `HOUSTON_IMAGE=localhost/houston-agent:${version}\nPODMAN_GLOBAL_ARGS=--root /tmp/ps --runroot /run/pr --runtime runc --cgroup-manager cgroupfs --events-backend file\nPODMAN_RUN_ARGS=--pids-limit=-1 ${lim}\n`,
      );
    } else copyFileSync(join(REPO, "systemd", "houston-agent.service"), join(units, "houston-agent.service"));
    writeFileSync(
      join(h.root, "etc", "houston", "agent.env"),
      `HOUSTON_LISTEN=0.0.0.0:9631\nHOUSTON_PREFIX=${this.kv.prefix}\n${agentToken ? `CONSUL_HTTP_TOKEN=${agentToken}\n` : ""}${Object.entries(
        this.opts.agentEnv ?? {},
      )
        .map(([k, v]) => `${k}=${v}\n`)
        .join("")}`,
      { mode: 0o600 },
    );
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

  /** PID of the first Consul server on this machine (for its memory), 0 if none */
  get serverPid(): number {
    return this.consulPids[0] ?? 0;
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
    await run("ip", ["link", "set", `th-${name}`, "down"]);
  }

  async reconnect(name: string): Promise<void> {
    await run("ip", ["link", "set", `th-${name}`, "up"]);
  }

  /** Runs a command inside a host (all its namespaces). */
  async shell(name: string, ...cmd: string[]): Promise<string> {
    const { stdout } = await run("bash", [TESTHOST, "shell", name, ...cmd], {
      env: { ...process.env, TESTHOST_BASE },
      maxBuffer: 4 << 20,
    });
    return stdout;
  }

  /** ActiveState of a unit inside a host, as systemctl says. */
  async unitState(host: string, unit: string): Promise<string> {
    try {
      return (await this.shell(host, "systemctl", "show", "-p", "ActiveState", "--value", unit)).trim();
    } catch {
      return "unknown";
    }
  }

  private stateFile(): string | null {
    return this.opts.name ? join(TESTHOST_BASE, `${this.opts.name}.fleet.json`) : null;
  }

  /** Written as soon as there is something to clean up (each host booted, the server started). */
  private record(booting: string[] = []): void {
    const file = this.stateFile();
    if (!file) return;
    mkdirSync(TESTHOST_BASE, { recursive: true });
    const hosts = [...new Set([...this.hosts.map((h) => h.name), ...booting])];
    const state: FleetState = {
      consulPids: this.consulPids,
      dataDir: this.dataDir,
      tlsDir: this.tlsDir,
      hosts,
      ...(this.fleetd ? { etcdPid: this.fleetd.etcdPid, etcdDir: this.fleetd.dataDir } : {}),
    };
    writeFileSync(file, JSON.stringify(state));
  }

  /** Removes what a fleet started under `name` left behind (its process was killed): hosts, Consul server, data. */
  static async down(name: string): Promise<string[]> {
    const file = join(TESTHOST_BASE, `${name}.fleet.json`);
    if (!existsSync(file)) return [];
    const state = JSON.parse(readFileSync(file, "utf8")) as Partial<FleetState>;
    const done: string[] = [];
    for (const pid of Array.isArray(state.consulPids) ? state.consulPids : []) {
      if (typeof pid === "number" && pid > 0 && isConsul(pid)) {
        await killAndWait(pid);
        done.push(`Consul server (pid ${pid})`);
      }
    }
    for (const h of Array.isArray(state.hosts) ? state.hosts.filter((x): x is string => typeof x === "string") : []) {
      if (existsSync(join(TESTHOST_BASE, h))) {
        await testhost("stop", h).catch(() => undefined);
        done.push(`test host ${h}`);
      }
    }
    if (typeof state.etcdPid === "number" && state.etcdPid > 0 && isEtcd(state.etcdPid)) {
      await killAndWait(state.etcdPid);
      done.push(`etcd (pid ${state.etcdPid})`);
    }
    for (const d of [state.dataDir, state.tlsDir, state.etcdDir])
      if (typeof d === "string" && d.startsWith(tmpdir())) rmSync(d, { recursive: true, force: true });
    rmSync(file, { force: true });
    return done;
  }

  async stop(): Promise<void> {
    await this.stopConsulServer().catch(() => undefined);
    await this.fleetd?.stop().catch(() => undefined);
    await Promise.all(this.opts.hosts.map((h) => testhost("stop", h.name).catch(() => undefined)));
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    const file = this.stateFile();
    if (file) rmSync(file, { force: true });
    if (this.tlsDir) rmSync(this.tlsDir, { recursive: true, force: true });
  }
}
