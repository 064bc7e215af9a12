/**
 * A real fleet v1.0.0 inside LocalFleet's test hosts (after ../shared/fleet/cluster-up.sh's tested
 * recipe): etcd 3.4 (v2 API) on this machine bound to the test bridge, and in every host fleetd as
 * a systemd service, socket-activated like CoreOS shipped it (/run/fleet.sock, plus TCP :49153),
 * enabled so that a rebooted host runs it again. Binaries from scripts/install-fleet.sh (.fleet/).
 */
import { spawn } from "node:child_process";
import {
  copyFileSync,
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
import { Fleet } from "../../shared/fleet.js";
import { freePortRange } from "./ports.js";
import { ROOT } from "./paths.js";
import { killAndWait, runs } from "./process.js";

export const FLEET_BIN = process.env.HOUSTON_FLEET_BIN ?? join(ROOT, ".fleet", "bin");
export const FLEET_API_PORT = 49153;

/** Whether fleetd and etcd are installed (scripts/install-fleet.sh); tests skip loudly otherwise. */
export function fleetdAvailable(): boolean {
  return existsSync(join(FLEET_BIN, "fleetd")) && existsSync(join(FLEET_BIN, "etcd"));
}

export interface FleetdHost {
  name: string;
  ip: string;
  root: string;
  meta: Record<string, string>;
}

export class LocalFleetd {
  etcdPid = 0;
  private constructor(
    readonly dataDir: string,
    readonly etcdUrl: string,
    private readonly args: string[],
    private readonly localUrl: string,
  ) {}

  /** etcd on the bridge, waiting until it answers; the hosts are installed by installHost(). */
  static async startEtcd(bridgeIp: string): Promise<LocalFleetd> {
    const port = await freePortRange([bridgeIp], 24000, 8000, "etcd");
    const peer = await freePortRange(["127.0.0.1"], 24000, 8000, "etcd");
    const dataDir = mkdtempSync(join(tmpdir(), "houston-etcd-"));
    const args = [
      "--name",
      "houston-fleet",
      "--data-dir",
      dataDir,
      "--enable-v2",
      "--listen-client-urls",
      `http://127.0.0.1:${port},http://${bridgeIp}:${port}`,
      "--advertise-client-urls",
      `http://${bridgeIp}:${port}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${peer}`,
      "--initial-cluster",
      `houston-fleet=http://127.0.0.1:${peer}`,
      "--initial-cluster-state",
      "new",
    ];
    const etcd = new LocalFleetd(dataDir, `http://${bridgeIp}:${port}`, args, `http://127.0.0.1:${port}`);
    await etcd.startEtcdAgain();
    return etcd;
  }

  /** Starts etcd (again, with its data: fleet's registry survives) and waits until it answers. */
  async startEtcdAgain(): Promise<void> {
    const child = spawn(join(FLEET_BIN, "etcd"), this.args, { detached: true, stdio: ["ignore", "ignore", "ignore"] });
    child.unref();
    this.etcdPid = child.pid ?? 0;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await fetch(`${this.localUrl}/v2/keys/`);
        if (res.ok) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline || !runs(this.etcdPid, "etcd")) {
        await this.stop();
        throw new Error("etcd did not come up within 60 s");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops etcd, keeping its data: every fleetd answers 503 until it is back. */
  async stopEtcd(): Promise<void> {
    if (this.etcdPid && runs(this.etcdPid, "etcd")) await killAndWait(this.etcdPid);
    this.etcdPid = 0;
  }

  /** fleetd's files in a host's root; started with the host's other units (enabled). */
  installHost(h: FleetdHost, agentTtl = "5s"): void {
    mkdirSync(join(h.root, "opt", "fleet"), { recursive: true });
    mkdirSync(join(h.root, "etc", "fleet"), { recursive: true });
    for (const b of ["fleetd", "fleetctl"]) copyFileSync(join(FLEET_BIN, b), join(h.root, "opt", "fleet", b));
    const meta = Object.entries(h.meta)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    writeFileSync(
      join(h.root, "etc", "fleet", "fleet.conf"),
      `etcd_servers=["${this.etcdUrl}"]\npublic_ip="${h.ip}"\nmetadata="${meta}"\nagent_ttl="${agentTtl}"\n`,
    );
    const units = join(h.root, "etc", "systemd", "system");
    writeFileSync(
      join(units, "fleet.socket"),
      `[Unit]\nDescription=Fleet API Socket\nPartOf=fleet.service\n\n[Socket]\nListenStream=/run/fleet.sock\nListenStream=${h.ip}:${FLEET_API_PORT}\n\n[Install]\nWantedBy=sockets.target\n`,
    );
    writeFileSync(
      join(units, "fleet.service"),
      `[Unit]\nDescription=fleet daemon\nWants=fleet.socket\nAfter=fleet.socket dbus.service\n\n[Service]\nExecStart=/opt/fleet/fleetd --config /etc/fleet/fleet.conf\nRestart=always\nRestartSec=1s\n`,
    );
    mkdirSync(join(units, "testhost.target.wants"), { recursive: true });
    for (const u of ["fleet.socket", "fleet.service"]) {
      const link = join(units, "testhost.target.wants", u);
      if (!existsSync(link)) symlinkSync(`../${u}`, link);
    }
    const hosts = join(h.root, "etc", "hosts");
    writeFileSync(hosts, `${existsSync(hosts) ? readFileSync(hosts, "utf8") : ""}${h.ip} ${h.name}\n`);
  }

  /** Until fleet lists every machine (fleetd registered in etcd). */
  static async waitMachines(fleet: Fleet, count: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fleet.machines()).length >= count) return;
      } catch {
        /* 503 until registered */
      }
      if (Date.now() > deadline) throw new Error(`fewer than ${count} fleet machines after 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    await this.stopEtcd();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
