/**
 * Archive delivery: one file archive of `mb` MB (random bytes, so nothing compresses it away) to
 * `hosts` real hosts at once, with a global unit that needs it. Measured: wall time of the deploy,
 * aggregate MB/s (archive size × hosts / time), bytes that reached the hosts (their network
 * interfaces), the Consul server's memory growth; then a second deploy with the same files (a new
 * unit version), which should move next to nothing: the archive is content-addressed and the
 * agents keep it.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalFleet } from "../../test/harness/local-fleet.js";
import { houstonCli } from "./cli.js";

export interface DeliveryResult {
  hosts: number;
  archiveMb: number;
  firstMs: number;
  aggregateMbPerS: number;
  mbToHostsFirst: number;
  mbToHostsSecond: number;
  consulRssGrowthMb: number;
}

function config(version: string, blob: string): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-bulk-"));
  for (const d of ["units/shared", "files/standalone"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "manifest.yaml"), `environments:\n  bench: {}\nshared-stacks:\n  bulk: [hold:${version}]\n`);
  writeFileSync(
    join(dir, "units/shared/hold.service"),
    "[Unit]\nDescription=needs the blob\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n",
  );
  writeFileSync(
    join(dir, "files/standalone/bulk.yaml"),
    `- path: /var/lib/bulk/blob\n  encoding: b64\n  permissions: "0644"\n  content: ${blob}\n`,
  );
  return dir;
}

const houston = (consul: string, dir: string, ...args: string[]): number =>
  houstonCli(consul, dir, "bench", ...args, "--timeout", "1800");

/** Bytes the hosts have received (the host side of each veth transmits into the host). */
function bytesToHosts(fleet: LocalFleet): number {
  return fleet.hosts.reduce(
    (sum, h) => sum + Number(readFileSync(`/sys/class/net/th-${h.name}/statistics/tx_bytes`, "utf8").trim()),
    0,
  );
}

function rssMb(pid: number): number {
  const st = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(st)?.[1] ?? "0") / 1024;
}

export async function archiveDelivery(prefix: string, hosts: number, mb: number): Promise<DeliveryResult> {
  const fleet = await LocalFleet.start({
    hosts: Array.from({ length: hosts }, (_, i) => ({ name: `${prefix}${i + 1}`, meta: { role: "bulk" } })),
  });
  const dirs: string[] = [];
  try {
    const blob = randomBytes(mb * 1048576).toString("base64");
    dirs.push(config("1", blob), config("2", blob));
    const rx0 = bytesToHosts(fleet);
    const rss0 = rssMb(fleet.serverPid);
    const firstMs = houston(fleet.consulAddr, dirs[0] ?? "", "standalone", "bulk");
    const rx1 = bytesToHosts(fleet);
    const rss1 = rssMb(fleet.serverPid);
    houston(fleet.consulAddr, dirs[1] ?? "", "standalone", "bulk");
    const rx2 = bytesToHosts(fleet);
    return {
      hosts,
      archiveMb: mb,
      firstMs,
      aggregateMbPerS: (mb * hosts) / (firstMs / 1000),
      mbToHostsFirst: (rx1 - rx0) / 1048576,
      mbToHostsSecond: (rx2 - rx1) / 1048576,
      consulRssGrowthMb: rss1 - rss0,
    };
  } finally {
    await fleet.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
