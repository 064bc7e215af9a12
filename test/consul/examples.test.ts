/**
 * The example config dirs through the built CLI, as a user runs `houston plan --json` (no Consul
 * reachable: it renders and says so).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");

describe("houston plan --json on the example dirs (built CLI)", () => {
  const cli = join(ROOT, "dist", "houston.js");
  const plan = (dir: string, env: string, ...args: string[]) => {
    const out = execFileSync(
      "node",
      [cli, "-c", join(ROOT, "examples", dir), "-e", env, "--consul", "http://127.0.0.1:9", "--json", "plan", ...args],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    return JSON.parse(out) as {
      units: { name: string; text: string; placements: unknown[]; service?: unknown }[];
      archives: { sha256: string; files: string[] }[];
      consul: { reachable: boolean };
    };
  };

  it("houston-classic: the seed's example stack in test and prod", () => {
    const test = plan("houston-classic", "test", "service", "example", "7b7d061b");
    expect(test.units.map((u) => u.name)).toEqual([
      `example-file-deploy@${test.archives[0]!.sha256.slice(0, 8)}.service`,
      "example-memcached@1.4.24.service",
      "example-nginx@35f9e1f3.service",
      "example-consul-template-nginx@d3bac01d.service",
      "example-mysql@5.5.service",
      "example-datadog@ff444e66.service",
      "example@7b7d061b.service",
    ]);
    expect(test.archives[0]!.files).toEqual([
      "/etc/dd-agent/conf.d/mcache.yaml",
      "/etc/nginx/conf.d/example.conf",
      "/etc/profile.d/memcached.env",
    ]);
    expect(test.units[3]!.text).toContain("BindsTo=example-nginx@35f9e1f3.service");
    expect(test.consul.reachable).toBe(false);
    const prod = plan("houston-classic", "prod", "service", "example", "7b7d061b");
    expect(prod.units.map((u) => u.name)).toContain("example-newrelic-sysmond@2.1.0.124.service");
    expect(prod.archives[0]!.files).toContain("/etc/example/prod-only.env");
    const global = plan("houston-classic", "test", "global");
    // the names the original Houston 0.3.0 gave them in fleet: global units bare, the file unit prefixed
    expect(global.units.map((u) => u.name)).toEqual([
      "consul@1.8.7.service",
      "registrator@v7.service",
      expect.stringMatching(/^global-file-deploy@[0-9a-f]{8}\.service$/),
    ]);
    expect(global.units[1]!.text).toContain("Requires=consul@1.8.7.service");
    // mysql (role=db, disk=ssd) is a singleton under fleet's semantics: one machine, not every match
    const mysql = test.units.find((u) => u.name === "example-mysql@5.5.service");
    expect(mysql?.placements).toEqual([{ global: false, metadata: { role: ["db"], disk: ["ssd"] } }]);
  });

  it("local: the runnable example", () => {
    const p = plan("local", "local", "service", "example", "1");
    const placement = (name: string) => p.units.find((u) => u.name === name)?.placements[0];
    expect(placement("example@1.service")).toEqual({ global: false, metadata: { role: ["web"] }, instances: 2 });
    expect(placement("example-worker@2.service")).toEqual({ global: false, metadata: { role: ["web"] } });
    expect(placement("example-cache@1.4.24.service")).toEqual({ global: true, metadata: { role: ["web"] } });
    // the example's service shares a socket across versions ([X-Houston] Socket=8080)
    expect(p.units.map((u) => u.name).slice(0, 2)).toEqual(["example.socket", "example.service"]);
    expect(p.units.map((u) => u.name).slice(3)).toEqual([
      "example-cache@1.4.24.service",
      "example-worker@2.service",
      "example@1.service",
    ]);
    expect(p.archives[0]!.files).toEqual([
      "/etc/houston-example/cache.env",
      "/etc/houston-example/greeting",
      "/opt/houston-example/server.py",
    ]);
  });

  it("local: the greeter has no fixed port (ServicePort=auto); the tools stack's client finds it through Consul", () => {
    const p = plan("local", "local", "service", "greeter", "1");
    expect(p.units.map((u) => u.name)).toEqual(["greeter@1.service"]);
    expect(p.units[0]!.service).toEqual({ name: "greeter", portRange: { from: 20000, to: 29999 }, interval: "1s" });
    expect(p.units[0]!.text).toContain("ExecStart=/usr/bin/python3 -m http.server ${HOUSTON_PORT}");
    const tools = plan("local", "local", "standalone", "tools");
    expect(tools.units.map((u) => u.name).slice(1)).toEqual([
      "tools-toolbox@1.service",
      "tools-greeter-client@1.service",
    ]);
    expect(tools.archives[0]!.files).toEqual(["/etc/houston-tools/motd", "/opt/houston-tools/find-greeter"]);
  });

  it("exits 2 with the file named on bad config", () => {
    const r = spawnSync("node", [cli, "-c", join(ROOT, "examples", "local"), "-e", "nope", "plan", "global"], {
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/ERROR +.*manifest\.yaml: environment "nope" is not defined/);
  });
});
