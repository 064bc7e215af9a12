/**
 * The original Houston's (0.3.0) control flow, reproduced as a benchmark baseline on the same
 * hosts: for each unit in order, submit it (write the unit file, daemon-reload) and start it on
 * every host it targets, then check its state, sleeping `delay` between checks up to `maxTries`;
 * after the file unit, the seed's fixed `sleep 30`; confirm the service through Consul's catalog;
 * destroy the other versions. Nothing of Houston's agents is used.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { FileEntry } from "../../controller/plan/inputs.js";
import type { UnitSpec } from "../../shared/spec.js";
import type { LocalFleet } from "../../test/harness/local-fleet.js";

export interface SeedOptions {
  delaySeconds: number;
  maxTries: number;
  /** the seed's fixed wait after the file unit (30 s); 0 in smoke runs */
  fileSleepSeconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Deploys `units` (as Houston rendered them) on `hosts` the seed's way; returns the wall time in ms. */
export async function seedDeploy(
  fleet: LocalFleet,
  hosts: string[],
  units: UnitSpec[],
  files: FileEntry[],
  service: { name: string; port: number; tag: string; check: string } | null,
  old: string[],
  o: SeedOptions,
): Promise<number> {
  const t0 = Date.now();
  for (const u of units) {
    // a unit fleet runs already (same name: an unchanged dependency or file unit) is left as it is
    if ((await Promise.all(hosts.map((h) => fleet.unitState(h, u.name)))).every((st) => st === "active")) continue;
    // the seed's file unit wrote the stack's files itself when it started
    if (u.role === "archive") {
      for (const h of hosts) {
        for (const f of files) {
          const at = join(fleet.host(h).root, f.path);
          mkdirSync(dirname(at), { recursive: true });
          writeFileSync(at, f.content);
          chmodSync(at, f.mode);
        }
      }
    }
    for (const h of hosts) writeFileSync(join(fleet.host(h).root, "etc/systemd/system", u.name), u.text);
    await Promise.all(hosts.map((h) => fleet.shell(h, "systemctl", "daemon-reload")));
    await Promise.all(hosts.map((h) => fleet.shell(h, "systemctl", "start", "--no-block", u.name)));
    let ok = false;
    for (let i = 0; i < o.maxTries && !ok; i++) {
      ok = (await Promise.all(hosts.map((h) => fleet.unitState(h, u.name)))).every((s) => s === "active");
      if (!ok) await sleep(o.delaySeconds * 1000);
    }
    if (!ok) throw new Error(`seed driver: ${u.name} did not become active`);
    if (u.role === "archive" && o.fileSleepSeconds > 0) await sleep(o.fileSleepSeconds * 1000);
  }
  const id = service ? `seed-${service.name}-${service.tag}` : null;
  if (service) {
    // registrator registered the service in the seed's world; here the driver does it on each host
    const reg = JSON.stringify({
      ID: id,
      Name: service.name,
      Port: service.port,
      Tags: [service.tag],
      Check: { HTTP: service.check, Interval: "2s" },
    });
    await Promise.all(
      hosts.map((h) =>
        fleet.shell(h, "curl", "-s", "-X", "PUT", "--data", reg, "127.0.0.1:8500/v1/agent/service/register"),
      ),
    );
    for (let i = 0; ; i++) {
      const { entries } = await fleet.consul.healthService(service.name, { passing: true, tag: service.tag });
      if (hosts.every((h) => entries.some((e) => e.Node.Node === h))) break;
      if (i >= o.maxTries) {
        const all = await fleet.consul.healthService(service.name);
        const seen = all.entries.map(
          (e) =>
            `${e.Node.Node} ${e.Service.Tags?.join(",")} ${e.Checks.map((c) => `${c.Status}:${c.Output.slice(0, 80)}`).join("/")}`,
        );
        const unit = units.find((u) => u.role === "service")?.name ?? "";
        const log = await fleet.shell(
          hosts[0] ?? "",
          "sh",
          "-c",
          `systemctl status --no-pager '${unit}' | tail -5; ss -ltnp | grep 8080 || true`,
        );
        throw new Error(
          `seed driver: ${service.name} (${service.tag}) was not confirmed in Consul: ${seen.join("; ") || "not registered"}\n${log}`,
        );
      }
      await sleep(o.delaySeconds * 1000);
    }
  }
  for (const name of old) {
    await Promise.all(
      hosts.map((h) => fleet.shell(h, "sh", "-c", `systemctl stop '${name}'; rm -f '/etc/systemd/system/${name}'`)),
    );
  }
  // registrator deregistered a service when its container stopped
  if (service && old.length > 0) await seedDeregister(fleet, hosts, service.name, id);
  await Promise.all(hosts.map((h) => fleet.shell(h, "systemctl", "daemon-reload")));
  return Date.now() - t0;
}

/**
 * Removes the driver's registrations of `name` on `hosts` (all of them, or all but `keep`). Left in
 * place, a later run that registers the same ID again would find its check passing at once:
 * Consul keeps a re-registered check's status.
 */
export async function seedDeregister(
  fleet: LocalFleet,
  hosts: string[],
  name: string,
  keep: string | null = null,
): Promise<void> {
  await Promise.all(
    hosts.map(async (h) => {
      const services = JSON.parse(await fleet.shell(h, "curl", "-sf", "127.0.0.1:8500/v1/agent/services")) as Record<
        string,
        unknown
      >;
      for (const sid of Object.keys(services))
        if (sid.startsWith(`seed-${name}-`) && sid !== keep)
          await fleet.shell(
            h,
            "curl",
            "-sf",
            "-X",
            "PUT",
            `127.0.0.1:8500/v1/agent/service/deregister/${encodeURIComponent(sid)}`,
          );
    }),
  );
}
