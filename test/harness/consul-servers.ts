/**
 * The Consul server(s) of a test fleet, on this machine: bound to the test bridge and loopback, one
 * or a real Raft cluster whose leader can be lost, HTTPS-only with `tls` (tls.ts), default deny with
 * `acl` (acl.ts); and the unit of the Consul client each host runs, joined to them over the test
 * network.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Consul } from "../../shared/consul.js";
import { clientAclHcl, serverAclHcl } from "./acl.js";
import { BRIDGE_IP, type FleetHost } from "./hosts.js";
import { CONSUL_BIN } from "./paths.js";
import { freePortRange } from "./ports.js";
import { killAndWait } from "./process.js";
import { consulTls, type TlsFiles } from "./tls.js";

// fast failure detection, so a stopped host shows up quickly (every agent must agree)
const GOSSIP = 'gossip_lan { probe_interval = "200ms" probe_timeout = "100ms" suspicion_mult = 2 }';

export interface ConsulServerOptions {
  /** how many servers (3: a Raft cluster) */
  count: number;
  tls: boolean;
  /** the management token (ACLs on) */
  acl?: string;
}

/** Server i uses ports port + 3i (HTTP or HTTPS), + 1 (serf LAN), + 2 (server RPC). */
export class ConsulServers {
  /** one per server (0: not running) */
  readonly pids: number[] = [];
  /** with `tls`: the certificates' directory and the files a client needs */
  tlsDir = "";
  tlsFiles: TlsFiles | null = null;

  private constructor(
    private readonly opts: ConsulServerOptions,
    readonly port: number,
    readonly dataDir: string,
  ) {}

  /** Free ports on loopback and the bridge, and a data directory; nothing started yet. */
  static async prepare(opts: ConsulServerOptions): Promise<ConsulServers> {
    const port = await freePortRange(["127.0.0.1", BRIDGE_IP, BRIDGE_IP], 21000, 15000, "the Consul server");
    return new ConsulServers(opts, port, mkdtempSync(join(tmpdir(), "houston-consul-server-")));
  }

  private get scheme(): string {
    return this.opts.tls ? "https" : "http";
  }

  /** The HTTP address of each server. */
  get addrs(): string[] {
    return Array.from({ length: this.opts.count }, (_, i) => `${this.scheme}://127.0.0.1:${this.port + 3 * i}`);
  }

  /** A client of the first server (with the management token and the client certificate). */
  client(): Consul {
    const t = this.tlsFiles;
    return new Consul({
      addr: `${this.scheme}://127.0.0.1:${this.port}`,
      token: this.opts.acl,
      tls: t ? { caFile: t.ca, certFile: t.cert, keyFile: t.key } : {},
    });
  }

  /** Starts the servers not running (with their data dirs: KV survives a restart), without waiting. */
  async spawnMissing(): Promise<void> {
    const p = this.port;
    let tlsArgs: string[] = [];
    if (this.opts.tls) {
      const tls = await consulTls(this.dataDir, p);
      this.tlsDir = tls.dir;
      this.tlsFiles = tls.files;
      tlsArgs = tls.args;
    }
    const count = this.opts.count;
    for (let i = 0; i < count; i++) {
      if (this.pids[i]) continue;
      const b = p + 3 * i;
      const many = count > 1;
      const joins = many
        ? Array.from({ length: count }, (_, j) => j)
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
          String(count),
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
          ...(this.opts.acl ? ["-hcl", serverAclHcl(this.opts.acl)] : []),
        ],
        { detached: true, stdio: ["ignore", "ignore", "ignore"] },
      );
      child.unref();
      this.pids[i] = child.pid ?? 0;
    }
  }

  /** Until there is a leader (60 s at most); then the hosts' clients join at once (serf alone retries failed members every 30 s). */
  async waitLeader(consul: Consul, hosts: FleetHost[]): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await consul.request("GET", "/v1/status/leader");
        if (res.body.toString().trim().length > 2) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error("Consul server did not elect itself leader within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const h of hosts) await consul.request("PUT", `/v1/agent/join/${h.ip}:8301`).catch(() => undefined);
  }

  /** Kills one server by PID (SIGKILL: no leave, as a crash). */
  async kill(index: number): Promise<void> {
    const pid = this.pids[index];
    if (!pid) return;
    await killAndWait(pid, "SIGKILL");
    this.pids[index] = 0;
  }

  async killAll(): Promise<void> {
    for (let i = 0; i < this.pids.length; i++) await this.kill(i);
  }

  /** Which server is the Raft leader now (by its server port), or -1. */
  async leaderIndex(via: Consul): Promise<number> {
    const res = await via.request("GET", "/v1/status/leader");
    const m = /:(\d+)"?\s*$/.exec(res.body.toString().trim());
    return m ? (Number(m[1]) - this.port - 2) / 3 : -1;
  }

  /** The unit of a host's Consul client agent: its own node name and -node-meta, joined to the servers. */
  clientUnit(h: FleetHost): string {
    const meta = Object.entries(h.meta)
      .map(([k, v]) => `-node-meta ${k}:${v}`)
      .join(" ");
    const joins = Array.from(
      { length: this.opts.count },
      (_, i) => `-retry-join ${BRIDGE_IP}:${this.port + 3 * i + 1}`,
    );
    const acl = this.opts.acl ? ` -hcl '${clientAclHcl(this.opts.acl)}'` : "";
    return [
      "[Unit]",
      `Description=Consul client agent of test host ${h.name}`,
      "",
      "[Service]",
      `ExecStart=/opt/houston/consul agent -node ${h.name} ${meta} -bind ${h.ip} -client 127.0.0.1 ${joins.join(" ")} -retry-interval 1s -data-dir /var/lib/consul -dns-port -1 -grpc-port -1 -hcl "disable_update_check = true" -hcl "leave_on_terminate = true" -hcl '${GOSSIP}'${acl}`,
      "Restart=on-failure",
      "",
    ].join("\n");
  }
}
