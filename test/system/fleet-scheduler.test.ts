/**
 * Houston on a cluster that runs fleet: a REAL fleetd v1.0.0 in each of three real systemd test
 * hosts (etcd 3.4 on this machine), a real Consul client and a Houston agent on every host. The
 * controller only writes KV; the agent holding the scheduler role mirrors specs into fleet and
 * fleet's /state back into placements. Without the fleet binaries (scripts/install-fleet.sh) the
 * suite is SKIPPED and says so on stderr.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { FLEET_API_PORT, FLEET_BIN, fleetdAvailable } from "../harness/fleetd.js";
import { Fleet, unitOptions } from "../../shared/fleet.js";
import { configDir, houston, writeConfig } from "../helpers/cli.js";
import { eventually } from "../helpers/specs.js";
import { rawTar } from "../helpers/tar.js";

const available = fleetdAvailable();
if (!available)
  process.stderr.write(
    `\n*** SKIPPED test/system/fleet-scheduler.test.ts: no real fleet in ${FLEET_BIN} (scripts/install-fleet.sh installs it from ../shared/fleet) ***\n\n`,
  );

const HOSTS = ["hf1", "hf2", "hf3"];
let fleet: LocalFleet;
let api: Fleet;
beforeAll(async () => {
  if (!available) return;
  await LocalFleet.down("fleet-scheduler");
  fleet = await LocalFleet.start({
    name: "fleet-scheduler",
    hosts: [
      { name: "hf1", meta: { role: "web" } },
      { name: "hf2", meta: { role: "web" } },
      { name: "hf3", meta: { role: "db" } },
    ],
    fleetd: true,
  });
  api = new Fleet(fleet.fleetEndpoint);
}, 240_000);
afterAll(async () => fleet?.stop(), 120_000);

const run = (dir: string, ...args: string[]) => houston(fleet.consulAddr, dir, ...args);
const sleeper = (xfleet: string) =>
  `[Unit]\nDescription=%p %i\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\n${xfleet}\n\n[X-Houston]\nMinHealthy=0\n`; // not about confirmation (see watch.test.ts)
// the service refuses to start without its files: the file unit must gate it
const webService = (exec = "/usr/bin/python3 -m http.server 8094 --bind 127.0.0.1 --directory /srv/web") =>
  `[Unit]\nDescription=web %i\n\n[Service]\nExecStartPre=/bin/cat /srv/web/index.html\nExecStart=${exec}\n\n[X-Fleet]\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=8094\nServiceCheckInterval=1s\n`;
const config = (): string =>
  configDir({
    "manifest.yaml": `environments:\n  test:\n    fleet: ${fleet.fleetEndpoint}\nglobal-units: [beat:1]\nshared-units:\n  web: [web-db:1]\n`,
    "units/global/beat.service": sleeper("Global=true"),
    "units/shared/web-db.service": sleeper("MachineMetadata=role=db"),
    "units/service/web.service": webService(),
    "files/service/web.yaml": "- {path: /srv/web/index.html, content: hello from houston}\n",
  });

/** fleetctl list-units, as an operator would read it: unit → host names (by machine IP) */
async function fleetctlUnits(endpoint = fleet.fleetEndpoint): Promise<Map<string, string[]>> {
  const { stdout } = await promisify(execFile)(join(FLEET_BIN, "fleetctl"), [
    "--endpoint",
    endpoint,
    "list-units",
    "--no-legend",
    "--full",
    "--fields",
    "unit,machine,active",
  ]);
  const out = new Map<string, string[]>();
  for (const line of stdout.split("\n").filter(Boolean)) {
    const [unit, machine, active] = line.split(/\s+/);
    if (!unit || active !== "active") continue;
    const ip = machine?.split("/")[1];
    const host = fleet.hosts.find((h) => h.ip === ip)?.name ?? machine ?? "?";
    out.set(unit, [...(out.get(unit) ?? []), host].sort());
  }
  return out;
}

async function fleetUnitNames(): Promise<string[]> {
  return (await api.units()).map((u) => u.name).sort();
}

interface StatusJson {
  stacks: { stack: string; units: { node: string; unit: string; activeState: string }[] }[];
}
async function statusUnits(dir: string, stack: string): Promise<Map<string, string[]>> {
  const st = JSON.parse((await run(dir, "--json", "status", stack)).stdout) as StatusJson;
  const out = new Map<string, string[]>();
  for (const u of st.stacks.find((s) => s.stack === stack)?.units ?? [])
    if (u.activeState === "active") out.set(u.unit, [...(out.get(u.unit) ?? []), u.node].sort());
  return out;
}

// each case deploys through fleet several times: minutes on a busy machine, not seconds
describe.skipIf(!available)("the fleet scheduler: Houston deploys through a real fleetd", { timeout: 240_000 }, () => {
  let dir = "";
  it("a seed-style config with a fleet endpoint deploys, confirms and prunes through fleet", async () => {
    dir = config();
    // a foreign fleet unit: Houston never touches it
    await api.putUnit("foreign.service", unitOptions(sleeper("Global=true"), "test"), "launched");
    const plan = await run(dir, "plan", "service", "web", "1");
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toContain("Scheduler: fleet");
    expect(plan.stdout).toContain("/usr/bin/curl"); // the file unit fleet runs asks the agent
    const g = await run(dir, "global");
    expect(g.code, g.stderr).toBe(0);
    const s = await run(dir, "service", "web", "1");
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toContain("Validated service is running with Consul");
    expect(s.stderr).toContain("You're Go");
    // fleet's agents report to /state on a timer: fleetctl catches up with systemd within seconds
    const inFleet = await eventually("fleetctl list-units shows what houston status shows", async () => {
      const f = await fleetctlUnits();
      const st = await statusUnits(dir, "web");
      const same = [...st].every(([u, hosts]) => JSON.stringify(f.get(u)) === JSON.stringify(hosts));
      return same && st.size > 0 && f.get("beat@1.service")?.length === HOSTS.length ? f : null;
    });
    expect(inFleet.get("beat@1.service")).toEqual(HOSTS);
    expect(inFleet.get("web-db@1.service")).toEqual(["hf3"]);
    expect(inFleet.get("web@1.service")).toHaveLength(1);
    const webHost = inFleet.get("web@1.service")?.[0] ?? "";
    expect(["hf1", "hf2"]).toContain(webHost);
    // fleetctl list-units shows what houston status shows
    const st = await statusUnits(dir, "web");
    for (const [unit, hosts] of st) expect(inFleet.get(unit), unit).toEqual(hosts);
    expect(st.get("web@1.service")).toEqual([webHost]);
    // the files came through the agent, on every machine the file unit runs on
    expect((await fleet.shell(webHost, "cat", "/srv/web/index.html")).trim()).toBe("hello from houston");
    expect(await fleetUnitNames()).toContain("foreign.service");
    // the file unit fleet runs gates the service: systemd orders it after, and needs it
    const fileUnit = [...inFleet.keys()].find((u) => u.startsWith("web-file-deploy@")) ?? "";
    expect(inFleet.get(fileUnit)).toEqual(HOSTS);
    const deps = await fleet.shell(webHost, "systemctl", "show", "-p", "Requires", "-p", "After", "web@1.service");
    expect(deps).toMatch(new RegExp(`Requires=.*${fileUnit.replace(/[.@]/g, "\\$&")}`));
    expect(deps).toMatch(new RegExp(`After=.*${fileUnit.replace(/[.@]/g, "\\$&")}`));
    // every agent sits on a fleet machine
    const nodes = JSON.parse((await run(dir, "--json", "nodes")).stdout) as {
      nodes: { node: string; fleetMachine: string | null }[];
      fleet: { withoutAgent: string[] };
    };
    expect(nodes.nodes.map((n) => n.fleetMachine === null)).toEqual([false, false, false]);
    expect(nodes.fleet.withoutAgent).toEqual([]);
  });

  it("an upgrade replaces the old version in fleet: exactly one copy of each unit", async () => {
    const s = await run(dir, "service", "web", "2");
    expect(s.code, s.stderr).toBe(0);
    const names = await fleetUnitNames();
    expect(names.filter((n) => n.startsWith("web@"))).toEqual(["web@2.service"]);
    expect(names).toContain("foreign.service");
    const inFleet = await eventually("web@2 active in fleetctl", async () => {
      const f = await fleetctlUnits();
      return f.get("web@2.service")?.length ? f : null;
    });
    expect(inFleet.get("web@2.service")).toHaveLength(1);
  });

  it("a failing unit is reported with its Result and destroyed in fleet; -n keeps it", async () => {
    writeConfig(dir, { "units/service/web.service": webService("/bin/false") });
    const bad = await run(dir, "service", "web", "3");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/web@3\.service.*(failed|exit-code)/);
    await eventually("web@3 destroyed in fleet", async () =>
      (await fleetUnitNames()).includes("web@3.service") ? null : true,
    );
    expect(await fleetUnitNames()).toContain("web@2.service");
    const kept = await run(dir, "service", "web", "4", "-n");
    expect(kept.code).not.toBe(0);
    expect(await fleetUnitNames()).toContain("web@4.service");
    writeConfig(dir, { "units/service/web.service": webService() });
    const good = await run(dir, "service", "web", "5");
    expect(good.code, good.stderr).toBe(0);
    expect((await fleetUnitNames()).filter((n) => n.startsWith("web@"))).toEqual(["web@5.service"]);
  });

  it("fleet moves a singleton when its machine stops; houston status follows", async () => {
    const before = (await statusUnits(dir, "web")).get("web@5.service")?.[0] ?? "";
    const other = before === "hf1" ? "hf2" : "hf1";
    await fleet.powerOff(before);
    try {
      await eventually("web@5 moved by fleet", async () =>
        (await statusUnits(dir, "web")).get("web@5.service")?.includes(other) ? true : null,
      );
      // asked of the machine that stayed up (the first one may be the one stopped)
      const up = `http://${fleet.host(other).ip}:${FLEET_API_PORT}`;
      const moved = await eventually("fleetctl shows web@5 on the other machine", async () => {
        const on = (await fleetctlUnits(up)).get("web@5.service");
        return on?.length ? on : null;
      });
      expect(moved).toEqual([other]);
      const st = JSON.parse((await run(dir, "--json", "status", "web")).stdout) as {
        stacks: { placements: { moves: { unit: string; from: string; to: string }[] } }[];
      };
      expect(st.stacks[0]?.placements.moves).toContainEqual(
        expect.objectContaining({ unit: "web@5.service", from: before, to: other }),
      );
    } finally {
      await fleet.powerOn(before);
    }
  });

  it("adopt takes over the original Houston's units and files: a failed first deploy keeps them, the next one replaces them", async () => {
    // what the original 0.3.0 left for stack "shop": its service, a dependency, its file unit (which
    // wrote /etc/shop/shop.env on the web machines) and that unit's archive in KV, in its own layout
    const fileUnit = "shop-file-deploy@0a1b2c3d.service";
    const seedUnits = ["shop@0.9.service", "shop-cache@0.9.service", fileUnit];
    const writeEnv = `[Unit]\nDescription=Houston File Archive Deployment\n\n[Service]\nType=oneshot\nRemainAfterExit=true\nExecStart=/bin/sh -c 'mkdir -p /etc/shop && echo SHOP=original > /etc/shop/shop.env'\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n`;
    for (const name of seedUnits)
      await api.putUnit(
        name,
        unitOptions(name === fileUnit ? writeEnv : sleeper("MachineMetadata=role=web"), name),
        "launched",
      );
    const tar = rawTar([{ path: "etc/shop/shop.env", data: "SHOP=original\n" }]);
    await fleet.consul.kvPut(`houston/${fileUnit}`, tar.toString("base64"));
    for (const h of ["hf1", "hf2"])
      await eventually(`the original's file unit wrote /etc/shop/shop.env on ${h}`, async () =>
        (await fleet.shell(h, "cat", "/etc/shop/shop.env").catch(() => "")).includes("SHOP=original") ? true : null,
      );
    // Houston's shop shares the dependency's name (cache 0.9) and writes the same file
    const shopConfig = (exec: string) => ({
      "manifest.yaml": `environments:\n  test:\n    fleet: ${fleet.fleetEndpoint}\nglobal-units: [beat:1]\nshared-units:\n  web: [web-db:1]\n  shop: [cache:0.9]\n`,
      "units/shared/cache.service": sleeper("MachineMetadata=role=web"),
      "units/service/shop.service": `[Unit]\nDescription=shop %i\n\n[Service]\nExecStartPre=/bin/cat /etc/shop/shop.env\nExecStart=${exec}\n\n[X-Fleet]\nMachineMetadata=role=web\n`,
      "files/service/shop.yaml": "- {path: /etc/shop/shop.env, content: SHOP=houston}\n",
    });
    writeConfig(dir, shopConfig("/bin/sleep infinity"));
    const dry = await run(dir, "adopt");
    expect(dry.code, dry.stderr).toBe(0);
    for (const name of seedUnits) expect(dry.stderr).toContain(`Would adopt ${name} (stack shop)`);
    expect(dry.stderr).toContain("Left alone: foreign.service");
    expect(dry.stderr).toContain(`houston/${fileUnit}: /etc/shop/shop.env`);
    const yes = await run(dir, "adopt", "--yes");
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stderr).toContain("Adopted shop@0.9.service (stack shop)");
    expect(yes.stderr).toContain("A deploy of shop may now replace the files of the original's archive");
    // adopted units keep running until a deploy of their stack is confirmed
    expect(await fleetUnitNames()).toEqual(expect.arrayContaining(seedUnits));

    // a failing first deploy after adopt: restore returns to exactly what ran, the original's units included
    writeConfig(dir, shopConfig("/bin/false"));
    const bad = await run(dir, "-s", "service", "shop", "0.95");
    expect(bad.code).not.toBe(0);
    await eventually("the failed deploy's own units destroyed", async () =>
      (await fleetUnitNames()).some(
        (n) => n === "shop@0.95.service" || (n.startsWith("shop-file-deploy@") && n !== fileUnit),
      )
        ? null
        : true,
    );
    expect(await fleetUnitNames()).toEqual(expect.arrayContaining(seedUnits));
    const running = await eventually("the original's shop and its dependency still active", async () => {
      const f = await fleetctlUnits();
      return f.get("shop@0.9.service")?.length && f.get("shop-cache@0.9.service")?.length ? f : null;
    });
    expect(running.get("shop@0.9.service")).toHaveLength(1);
    for (const h of ["hf1", "hf2"]) expect(await fleet.shell(h, "cat", "/etc/shop/shop.env")).toMatch(/SHOP=/);

    // the next deploy replaces the original's file (and only it), takes the shared-name unit over in place
    writeConfig(dir, shopConfig("/bin/sleep infinity"));
    const d = await run(dir, "-s", "service", "shop", "1.0");
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toContain("Destroying shop@0.9.service (adopted from the original Houston)");
    expect(d.stderr).toContain("shop-cache@0.9.service taken over in place");
    expect(d.stderr).not.toContain("Destroying shop-cache@0.9.service");
    for (const h of ["hf1", "hf2"])
      expect((await fleet.shell(h, "cat", "/etc/shop/shop.env")).trim()).toBe("SHOP=houston");
    await eventually("the original's shop units destroyed", async () =>
      (await fleetUnitNames()).some((n) => n === "shop@0.9.service" || n === fileUnit) ? null : true,
    );
    const shop = (await fleetUnitNames()).filter((n) => n.startsWith("shop") && !n.startsWith("shop-file-deploy@"));
    expect(shop).toEqual(["shop-cache@0.9.service", "shop@1.0.service"]);
    expect(await fleetUnitNames()).toContain("foreign.service");
  });

  it("fleet answering 503 (etcd away): a standalone deploy says why it waits, and completes once fleet is back", async () => {
    writeConfig(dir, {
      "manifest.yaml": `environments:\n  test:\n    fleet: ${fleet.fleetEndpoint}\nglobal-units: [beat:1]\nshared-units:\n  web: [web-db:1]\nshared-stacks:\n  tools: [cron:1]\n`,
      "units/shared/cron.service": sleeper("MachineMetadata=role=db"),
    });
    const etcd = fleet.fleetd!;
    await etcd.stopEtcd();
    let restarted = false;
    try {
      const deploy = run(dir, "standalone", "tools");
      const note = await eventually("the placements say why nothing moves", async () => {
        const e = await fleet.consul.kvGet(fleet.kv.placement("tools"));
        const doc = e ? (JSON.parse(e.value.toString("utf8")) as { note?: string }) : null;
        return doc?.note ?? null;
      });
      // fleetd answers 503 before it has registered, an empty 500 once its etcd is gone
      expect(note).toMatch(/^fleet at unix:\/\/\/var\/run\/fleet\.sock: fleet GET \w+: 50[03] .*\(retrying\)$/);
      const st = JSON.parse((await run(dir, "--json", "status", "tools")).stdout) as {
        stacks: { placements: { note: string | null } }[];
      };
      expect(st.stacks[0]?.placements.note).toBe(note);
      await etcd.startEtcdAgain();
      restarted = true;
      const r = await deploy;
      expect(r.code, r.stderr).toBe(0);
      const cron = await eventually("tools-cron@1 active in fleetctl", async () => {
        const on = (await fleetctlUnits()).get("tools-cron@1.service");
        return on?.length ? on : null;
      });
      expect(cron).toEqual(["hf3"]);
    } finally {
      if (!restarted) await etcd.startEtcdAgain();
    }
  });

  it("remove destroys the stack's units in fleet and nothing else", async () => {
    const r = await run(dir, "remove", "web");
    expect(r.code, r.stderr).toBe(0);
    await eventually("web's units gone from fleet", async () =>
      (await fleetUnitNames()).some((n) => n.startsWith("web")) ? null : true,
    );
    const names = await fleetUnitNames();
    expect(names).toContain("foreign.service");
    expect(names).toContain("beat@1.service");
  });
});
