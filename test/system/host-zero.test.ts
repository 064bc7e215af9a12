/**
 * A host from zero, configured ONLY from `houston host-config`'s Butane output: a fresh systemd
 * test host gets the config's files, trees and units (test/helpers/butane-apply.ts, as Ignition
 * would), then `systemctl enable --now` of the enabled units. Its Consul client joins the test
 * server with its own node-identity token (default-deny ACLs), the agent registers and passes its
 * check with its own token, trusts the key it was given, and takes a signed deploy.
 * The agent runs natively here (--agent native): this machine has no podman for the image.
 */
import { execFile } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { TESTHOST_BASE } from "../harness/hosts.js";
import { LocalFleet } from "../harness/local-fleet.js";
import { applyButane } from "../helpers/butane-apply.js";
import { configDir, houston } from "../helpers/cli.js";
import { CONSUL_BIN, ROOT } from "../harness/paths.js";
import { eventually } from "../helpers/specs.js";

const run = promisify(execFile);
const H = "hz1";
const MASTER = "h0st-zer0-master-token";
const testhost = (...args: string[]) =>
  run("bash", [join(ROOT, "scripts", "testhost.sh"), ...args], { env: { ...process.env, TESTHOST_BASE } });
const shell = async (...cmd: string[]) => (await testhost("shell", H, ...cmd)).stdout;

let fleet: LocalFleet | undefined;
let root = "";
let dir = "";
let keyId = "";
let tokens: Record<string, string> = {};
let enabled: string[] = [];

beforeAll(async () => {
  // the host first: it brings up the bridge the Consul server binds to
  if (existsSync(join(TESTHOST_BASE, H))) await testhost("stop", H);
  await testhost("start", H);
  const env = readFileSync(join(TESTHOST_BASE, H, "env"), "utf8");
  root = /^TESTHOST_ROOT=(.*)$/m.exec(env)?.[1] ?? "";
  const ip = /^TESTHOST_IP=(.*)$/m.exec(env)?.[1] ?? "";
  fleet = await LocalFleet.start({ hosts: [], acl: MASTER });
  const self = JSON.parse((await fleet.consul.request("GET", "/v1/agent/self")).body.toString()) as {
    Member: { Addr: string; Port: number };
  };
  dir = configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  zero: [app:1]\n",
    "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
  });
  const k = await houston(fleet.consulAddr, dir, "keygen", "--out", join(dir, "ci"));
  keyId = /key ([0-9a-f]{16})/.exec(k.stderr)?.[1] ?? "";
  const b = await houston(fleet.consulAddr, dir, "--token", MASTER, "--json", "acl", "bootstrap-tokens", "--node", H);
  expect(b.code, b.stderr).toBe(0);
  writeFileSync(join(dir, "tokens.json"), b.stdout, { mode: 0o600 });
  tokens = Object.fromEntries(
    (JSON.parse(b.stdout) as { tokens: { role: string; secretId: string }[] }).tokens.map((t) => [t.role, t.secretId]),
  );
  // what butane --files-dir would embed: the consul binary and the agent's files (its bundle)
  const files = mkdtempSync(join(tmpdir(), "houston-files-"));
  copyFileSync(CONSUL_BIN, join(files, "consul"));
  const agent = join(files, "houston-agent");
  mkdirSync(join(agent, "node_modules"), { recursive: true });
  for (const f of ["houston-agent.js", "package.json"]) copyFileSync(join(ROOT, "dist", f), join(agent, f));
  for (const mod of ["better-sqlite3", "bindings", "file-uri-to-path"])
    cpSync(join(ROOT, "node_modules", mod), join(agent, "node_modules", mod), {
      recursive: true,
      filter: (src) => !src.includes(`${mod}/deps`) && !src.includes("/src/") && !src.endsWith(".o"),
    });
  const cfg = await houston(
    fleet.consulAddr,
    dir,
    "host-config",
    "--node",
    H,
    "--meta",
    "role=web",
    "--consul-join",
    `${self.Member.Addr}:${self.Member.Port}`,
    "--consul-bind",
    ip,
    "--tokens-file",
    join(dir, "tokens.json"),
    "--trust-key",
    join(dir, "ci.pub"),
    "--agent",
    "native",
    "--agent-files",
    "houston-agent",
    "--consul-binary-local",
    "consul",
  );
  expect(cfg.code, cfg.stderr).toBe(0);
  enabled = applyButane(parse(cfg.stdout), root, files);
  await shell("systemctl", "daemon-reload");
  await shell("systemctl", "enable", "--now", ...enabled);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
  await testhost("stop", H).catch(() => undefined);
});

describe("a host from zero, from houston host-config alone", () => {
  it("enables the Consul client and the agent; the token file and state dir are private", async () => {
    expect(enabled).toEqual(["houston-consul.service", "houston-agent.service"]);
    expect((await shell("stat", "-c", "%a %U", "/etc/houston/agent.env")).trim()).toBe("600 root");
    expect((await shell("stat", "-c", "%a %U", "/etc/consul.d/houston-client.json")).trim()).toBe("600 root");
    expect((await shell("stat", "-c", "%a", "/var/lib/houston")).trim()).toBe("700");
    for (const u of enabled) expect((await shell("systemctl", "is-enabled", u)).trim()).toBe("enabled");
  });

  it("its Consul client joins with its own token and the agent passes its check", async () => {
    const c = fleet!.consul;
    await eventually("hz1's houston-agent check to pass", async () => {
      const { entries } = await c.healthService("houston-agent", { passing: true });
      return entries.some((e) => e.Node.Node === H);
    });
    const node = JSON.parse((await c.request("GET", `/v1/catalog/node/${H}`)).body.toString()) as {
      Node: { Meta: Record<string, string> };
    };
    expect(node.Node.Meta.role).toBe("web");
    const log = await shell("journalctl", "-u", "houston-consul.service", "--no-pager");
    expect(log).not.toMatch(/blocked by ACLs/);
  });

  it("takes a signed deploy under default-deny ACLs; nodes names the key it trusts", async () => {
    const d = await houston(
      fleet!.consulAddr,
      dir,
      "--token",
      tokens.controller!,
      "--signing-key",
      join(dir, "ci.key"),
      "standalone",
      "zero",
    );
    expect(d.code, d.stderr).toBe(0);
    expect((await shell("systemctl", "is-active", "zero-app@1.service")).trim()).toBe("active");
    const n = await houston(fleet!.consulAddr, dir, "--token", tokens.operator!, "nodes");
    expect(n.stdout, n.stderr).toMatch(new RegExp(`${H} .*signed by ${keyId}`));
  });
});
