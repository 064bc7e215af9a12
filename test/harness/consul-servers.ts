/**
 * The Consul server(s) of a test fleet, on this machine: bound to the test bridge and loopback, one
 * or a real Raft cluster whose leader can be lost, HTTPS-only with `tls` (tls.ts), default deny with
 * `acl` (acl.ts); and the unit of the Consul client each host runs, joined to them over the test
 * network.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from "node:fs";
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

/** A server process exited before there was a leader (a port taken since it was probed, most often). */
export class ConsulServerExited extends Error {}

/** Server i uses ports port + 3i (HTTP or HTTPS), + 1 (serf LAN), + 2 (server RPC). */
export class ConsulServers {
  /** one per server (0: not running) */
  readonly pids: number[] = [];
  /** what each server process printed (stdout and stderr), for the error when it does not come up */
  private readonly logs: string[] = [];
  /** servers whose process exited since it was spawned, with how */
  private readonly exited = new Map<number, string>();
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
      this.logs[i] = join(this.dataDir, `server-${i + 1}.log`);
      const out = openSync(this.logs[i] ?? "", "a");
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
        { detached: true, stdio: ["ignore", out, out] },
      );
      closeSync(out);
      this.exited.delete(i);
      child.once("exit", (code, signal) => {
        if (this.pids[i] === child.pid) this.exited.set(i, signal ? `killed by ${signal}` : `exit code ${code ?? "?"}`);
      });
      child.unref();
      this.pids[i] = child.pid ?? 0;
    }
  }

  /**
   * Until there is a leader; then the hosts' clients join at once (serf alone retries failed members
   * every 30 s). Waits on events, not on speed: a server process that exits fails at once with its
   * log (ConsulServerExited); while the servers run it says every 10 s that it waits, and gives up
   * only after 5 minutes (a Raft election takes seconds even on a loaded machine).
   */
  async waitLeader(consul: Consul, hosts: FleetHost[], log: (m: string) => void = () => undefined): Promise<void> {
    const started = Date.now();
    let said = started;
    for (;;) {
      try {
        const res = await consul.request("GET", "/v1/status/leader");
        if (res.body.toString().trim().length > 2) break;
      } catch {
        /* not up yet */
      }
      const [i, how] = [...this.exited.entries()][0] ?? [];
      if (i !== undefined)
        throw new ConsulServerExited(
          `Consul server ${i + 1} exited (${how}) before electing a leader:\n${this.logTail(i)}`,
        );
      const waited = Date.now() - started;
      if (waited > 300_000)
        throw new Error(`no Consul leader after ${Math.round(waited / 1000)} s; server 1 said:\n${this.logTail(0)}`);
      if (Date.now() - said >= 10_000) {
        said = Date.now();
        log(`waiting for the Consul server(s) to elect a leader (${Math.round(waited / 1000)} s)`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const h of hosts) await consul.request("PUT", `/v1/agent/join/${h.ip}:8301`).catch(() => undefined);
  }

  /** The last lines server i printed. */
  private logTail(i: number): string {
    const f = this.logs[i];
    if (!f || !existsSync(f)) return "(no log)";
    return readFileSync(f, "utf8").trim().split("\n").slice(-15).join("\n");
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
