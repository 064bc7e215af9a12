/**
 * Dynamic ports registered in Consul ([X-Houston] ServicePort=auto) on a real systemd host: a plain
 * server (python3 -m http.server) binding $HOUSTON_PORT is deployed v1, then v2. During the
 * upgrade both versions run side by side on different ports; a consumer outside the host that
 * resolves the service through Consul's catalog (passing instances, their node address and port)
 * gets an answer in every round; afterwards the catalog shows v2's port only, v1 and its drop-in
 * are gone, the unit file is the signed text (the port is in the drop-in), and the port survives
 * an agent restart without the server being restarted (last: a restarted agent takes the
 * scheduler role again only after Consul's lock delay, and v2's placement would wait for it).
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston, startCli } from "../helpers/cli.js";
import { eventually } from "../helpers/specs.js";
import { listAgents } from "../../shared/stores/agents.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: [{ name: "dp1", meta: { role: "web" } }] });
});
afterAll(async () => fleet?.stop());

const UNIT = `[Unit]
Description=plain server %i on the port Houston hands it

[Service]
RuntimeDirectory=dyn-%i
ExecStartPre=/bin/sh -c 'echo "version %i" > /run/dyn-%i/index.html'
ExecStart=/usr/bin/python3 -m http.server \${HOUSTON_PORT} --directory /run/dyn-%i
# a line per request would load the host's journal as much as the server
StandardError=null

[X-Fleet]
MachineMetadata=role=web

[X-Houston]
ServicePort=auto
ServiceCheckInterval=1s
`;

/** GET / of a node address and port: the body, or null when nothing answered */
function fetchBody(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: "/", agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(res.statusCode === 200 ? body.trim() : null));
      res.on("error", () => resolve(null));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
    req.end();
  });
}

/** What a consumer finds through Consul: each passing instance's version tag, address and port. */
async function resolve(): Promise<{ version: string; address: string; port: number }[]> {
  const { entries } = await fleet.consul.healthService("dyn", { passing: true });
  return entries.map((e) => ({
    version: (e.Service.Tags ?? []).find((t) => t.startsWith("version:"))?.slice(8) ?? "?",
    address: e.Service.Address || e.Node.Address,
    port: e.Service.Port,
  }));
}

const environmentOf = async (unit: string) =>
  (await fleet.shell("dp1", "systemctl", "show", "-p", "Environment", "--value", unit)).trim();

describe("ServicePort=auto: each version its own port, found through Consul", () => {
  const dir = configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  dyn: []\n",
    "units/service/dyn.service": UNIT,
  });
  let v1Port = 0;
  let v2Port = 0;

  it("plan says the strategy; v1 is registered with the port the agent chose, handed over in a drop-in", async () => {
    const plan = await houston(fleet.consulAddr, dir, "plan", "service", "dyn", "1");
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toMatch(
      /Upgrade of dyn@\*: ServicePort=auto \(20000-29999\): each version gets its own port, registered in Consul; old and new run side by side, clients find the new one through Consul/,
    );
    const r = await houston(fleet.consulAddr, dir, "service", "dyn", "1");
    expect(r.code, r.stderr).toBe(0);
    const found = await resolve();
    expect(found).toHaveLength(1);
    v1Port = found[0]!.port;
    expect(v1Port).toBeGreaterThanOrEqual(20000);
    expect(v1Port).toBeLessThanOrEqual(29999);
    expect(await environmentOf("dyn@1.service")).toBe(`HOUSTON_PORT=${v1Port}`);
    expect(await fetchBody(found[0]!.address, v1Port)).toMatch(/version 1/);
    // status names the port beside the version
    const st = await houston(fleet.consulAddr, dir, "status", "dyn");
    expect(st.stdout).toMatch(new RegExp(`dp1\\s+dyn@1\\.service\\s+1 \\(port ${v1Port}\\)\\s+active/running`));
    // the unit file is the text as planned (and signed); the port lives in the drop-in beside it
    const cat = await fleet.shell("dp1", "systemctl", "cat", "dyn@1.service");
    expect(cat).toMatch(/dyn@1\.service\.d\/houston-port\.conf\n.*\n\[Service\]\nEnvironment=HOUSTON_PORT=\d+/);
  }, 300_000);

  it("v1 → v2: side by side on two ports, every consumer round answered, then only v2's port is in the catalog", async () => {
    // v2 is ready-aware (its check passes): without a window v1 would be pruned the moment v2 is
    // confirmed. A 5 s window keeps both in the catalog for 5 s at least (confirm, watch, then prune)
    const upgrade = startCli(fleet.consulAddr, dir, ["--min-healthy", "5", "service", "dyn", "2"]);
    let upgrading = true;
    const done = upgrade.done.finally(() => (upgrading = false));
    // a consumer outside the host: resolve through Consul, ask one instance after another until one answers
    let rounds = 0;
    let unanswered = 0;
    const sideBySide = new Set<string>();
    const t0 = Date.now();
    const seen: string[] = []; // when the catalog's answer changed, for the log
    let last = "";
    while (upgrading && rounds < 20_000) {
      rounds++;
      const found = await resolve();
      const now = found.map((f) => `${f.version}:${f.port}`).join(" ");
      if (now !== last) seen.push(`${((Date.now() - t0) / 1000).toFixed(1)}s [${(last = now)}]`);
      let answered = false;
      for (const f of found) {
        const body = await fetchBody(f.address, f.port);
        if (body === null) continue;
        expect(body).toBe(`version ${f.version}`);
        answered = true;
        break;
      }
      if (!answered) unanswered++;
      if (new Set(found.map((f) => f.version)).size === 2 && new Set(found.map((f) => f.port)).size === 2)
        for (const f of found) sideBySide.add(`${f.version}:${f.port}`);
    }
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    process.stderr.write(
      `dynamic port: ${rounds} consumer rounds, ${unanswered} unanswered; the catalog: ${seen.join(", ")}; done ${((Date.now() - t0) / 1000).toFixed(1)}s\n`,
    );
    expect(rounds).toBeGreaterThan(10);
    expect(unanswered).toBe(0);
    expect(r.stderr).toContain("Destroying dyn@1.service");
    // both versions were passing in the catalog at once, each on its own port
    expect([...sideBySide].some((s) => s === `1:${v1Port}`)).toBe(true);
    const v2 = [...sideBySide].find((s) => s.startsWith("2:"));
    expect(v2).toBeDefined();
    v2Port = Number(v2!.slice(2));
    expect(v2Port).not.toBe(v1Port);
    // after the prune: v2 alone in the catalog, on its port; v1 and its drop-in gone
    const after = await eventually("the catalog to list v2 alone", async () => {
      const found = await resolve();
      return found.length === 1 ? found : undefined;
    });
    expect(after[0]).toMatchObject({ version: "2", port: v2Port });
    expect(await environmentOf("dyn@2.service")).toBe(`HOUSTON_PORT=${v2Port}`);
    expect(["inactive", "unknown"]).toContain(await fleet.unitState("dp1", "dyn@1.service"));
    const units = await fleet.shell("dp1", "sh", "-c", "ls -d /etc/systemd/system/dyn@* || true");
    expect(units.trim().split("\n").sort()).toEqual([
      "/etc/systemd/system/dyn@2.service",
      "/etc/systemd/system/dyn@2.service.d",
    ]);
  }, 600_000);

  it("an agent restart keeps the port, and the server is not restarted", async () => {
    const pid = async () =>
      (await fleet.shell("dp1", "systemctl", "show", "-p", "MainPID", "--value", "dyn@2.service")).trim();
    const before = await pid();
    const startedAt = async () => (await listAgents(fleet.consul, fleet.kv)).records.get("dp1")?.startedAt;
    const was = await startedAt();
    await fleet.shell("dp1", "systemctl", "restart", "houston-agent.service");
    await eventually("the restarted agent's record", async () => (await startedAt()) !== was);
    await fleet.waitForAgents(); // its check passes once it has reconciled
    const r = await houston(fleet.consulAddr, dir, "status", "dyn");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`dyn@2\\.service\\s+2 \\(port ${v2Port}\\)\\s+active/running`));
    expect(await environmentOf("dyn@2.service")).toBe(`HOUSTON_PORT=${v2Port}`);
    expect(await pid()).toBe(before);
    expect((await resolve()).map((f) => f.port)).toEqual([v2Port]);
  }, 300_000);

  it("removing the stack removes the drop-in with the unit", async () => {
    const rm = await houston(fleet.consulAddr, dir, "remove", "dyn");
    expect(rm.code, rm.stderr).toBe(0);
    const left = await fleet.shell("dp1", "sh", "-c", "ls -d /etc/systemd/system/dyn@* 2>/dev/null || true");
    expect(left.trim()).toBe("");
    expect(await resolve()).toEqual([]);
  }, 300_000);
});
