/**
 * Bad input at the door, through the built CLI as a user runs it: each is a clear message naming
 * the file:line, key or flag, exit status 2, no stack trace, and nothing sent to Consul (the
 * address given is closed: anything that got that far would be exit 3).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configDir, houston, startCli, writeConfig } from "../helpers/cli.js";
import { ROOT } from "../harness/paths.js";

const CLOSED = "http://127.0.0.1:1";
const base = {
  "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web: [app:1]\nshared-units:\n  svc: [app:1]\n",
  "units/shared/app.service": "[Service]\nExecStart=/bin/true\n",
  "units/service/svc.service": "[Service]\nExecStart=/bin/true\n",
};
const bomb = [
  "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
  ...Array.from(
    { length: 8 },
    (_, i) =>
      `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9)
        .fill(`*${String.fromCharCode(97 + i)}`)
        .join(", ")}]`,
  ),
].join("\n");

const cases: { title: string; files?: Record<string, string>; args: string[]; err: RegExp }[] = [
  {
    title: "a stack name with '/' in history",
    args: ["history", "a/b"],
    err: /command line: STACK "a\/b" is not a stack name/,
  },
  { title: "a stack name with '/' in remove", args: ["remove", "a/b"], err: /STACK "a\/b" is not a stack name/ },
  { title: "a stack name with '/' in rollback", args: ["rollback", "a/b"], err: /STACK "a\/b" is not a stack name/ },
  {
    title: "a path as a service name (no read outside the config dir)",
    args: ["service", "../../etc/x", "1"],
    err: /"..\/..\/etc\/x" is not a stack name/,
  },
  {
    title: "a generation past a safe integer",
    args: ["rollback", "web", "99999999999999999999"],
    err: /GENERATION must be a positive whole number/,
  },
  {
    title: "a timeout past what a timer holds",
    args: ["--timeout", "99999999999", "standalone", "web"],
    err: /--timeout 99999999999 is longer than a timer holds/,
  },
  {
    title: "delay × tries past what a timer holds",
    args: ["-d", "100000", "-m", "100000", "standalone", "web"],
    err: /--delay × --max-tries .* is longer than a timer holds/,
  },
  {
    title: "a negative --min-healthy",
    args: ["--min-healthy", "-5", "standalone", "web"],
    err: /--min-healthy must be a non-negative whole number, got "-5"/,
  },
  {
    title: "an empty --timeout",
    args: ["--timeout", "", "standalone", "web"],
    err: /--timeout must be a positive whole number, got ""/,
  },
  { title: "an empty --consul", args: ["--consul", "", "status"], err: /--consul: the Consul address is empty/ },
  ...["status", "history", "nodes"].map((cmd) => ({
    title: `an -e the manifest does not define, for ${cmd} (not the default Consul in disguise)`,
    args: ["-e", "prdo", cmd],
    err: /manifest\.yaml: environment "prdo" is not defined \(known: test\)/,
  })),
  {
    title: "an unsupported --consul scheme",
    args: ["--consul", "unix:///var/run/consul.sock", "status"],
    err: /--consul: .*unsupported scheme unix/,
  },
  {
    title: "a --consul with a path",
    args: ["--consul", "http://127.0.0.1:1/v1/kv", "status"],
    err: /--consul: .*no path or query/,
  },
  {
    title: "a --prefix outside the allowed shape",
    args: ["--prefix", "../x", "status"],
    err: /--prefix: "..\/x" is not a KV prefix/,
  },
  {
    title: "a version with a control character",
    args: ["plan", "service", "svc", "v\u001b1"],
    err: /invalid version "v\\u001b1"/,
  },
  {
    title: "an archive limit of 0",
    args: ["--max-archive-size", "0", "plan", "standalone", "web"],
    err: /--max-archive-size: expected a whole number of MiB/,
  },
  {
    title: "a token over plain http to another host",
    args: ["--consul", "http://192.0.2.1:8500", "--token", "t", "status"],
    err: /refusing to send the Consul token over plain http to 192.0.2.1:8500/,
  },
  {
    title: "a token with a line break (a header injection)",
    args: ["--token", "abc\nX-Injected: 1", "status"],
    err: /--token: the Consul token has a line break \(\\n\) at character 4/,
  },
  {
    title: "a token with a carriage return (a token file pasted from Windows)",
    args: ["--token", "abc\r", "status"],
    err: /--token: the Consul token has a carriage return \(\\r\) at character 4/,
  },
  {
    title: "MachineMetadata without '='",
    files: { "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=role web=1\n" },
    args: ["plan", "standalone", "web"],
    err: /app.service:4: \[X-Fleet\] MachineMetadata=role web=1: "role" is not key=value/,
  },
  {
    title: "MachineMetadata with an empty key",
    files: { "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata==web\n" },
    args: ["plan", "standalone", "web"],
    err: /app.service:4: .*has an empty key/,
  },
  {
    title: "MachineMetadata with unbalanced quotes",
    files: { "units/shared/app.service": '[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata="role=web\n' },
    args: ["plan", "standalone", "web"],
    err: /app.service:4: .*unbalanced quotes/,
  },
  {
    title: "a YAML alias bomb",
    files: { "files/standalone/web.yaml": `${bomb}\n` },
    args: ["plan", "standalone", "web"],
    err: /web.yaml: cannot read this YAML: Excessive alias count/,
  },
  {
    title: "an [environment:X] that is not defined",
    files: { "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  web:\n    - 'app:1[environment:prdo]'\n" },
    args: ["plan", "standalone", "web"],
    err: /manifest.yaml:5: .*\[environment:prdo\] names an environment that is not defined/,
  },
  {
    title: "a file entry for an undefined environment",
    files: { "files/standalone/web.yaml": "- {path: /a, content: x, environment: prdo}\n" },
    args: ["plan", "standalone", "web"],
    err: /web.yaml:1: 0.environment: environment "prdo" is not defined/,
  },
  {
    title: "a service check on another host",
    files: {
      "units/service/svc.service":
        "[Service]\nExecStart=/bin/true\n[X-Houston]\nServicePort=80\nServiceCheckHTTP=http://10.0.0.9/\n",
    },
    args: ["plan", "service", "svc", "1"],
    err: /svc.service:5: \[X-Houston\] check URL http:\/\/10.0.0.9\/ must target this host/,
  },
  {
    title: "a unit rendering to a system name",
    files: { "units/service/getty.service": "[Service]\nExecStart=/bin/true\n" },
    args: ["plan", "service", "getty", "tty1"],
    err: /getty.service: getty@tty1.service would shadow the system's getty@ units/,
  },
  {
    title: "a manifest Consul address with another scheme",
    files: { "manifest.yaml": "environments:\n  test: {consul: 'ftp://x'}\nshared-stacks:\n  web: [app:1]\n" },
    args: ["plan", "standalone", "web"],
    err: /manifest.yaml:2: environments.test.consul: .*unsupported scheme ftp/,
  },
  {
    title: "Global= that is not a boolean",
    files: { "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=maybe\n" },
    args: ["plan", "standalone", "web"],
    err: /app.service:4: \[X-Fleet\] Global=maybe: expected true or false/,
  },
  {
    title: "an unknown [X-Houston] key (a typo that would do nothing)",
    files: { "units/service/svc.service": "[Service]\nExecStart=/bin/true\n[X-Houston]\nServicPort=80\n" },
    args: ["plan", "service", "svc", "1"],
    err: /svc.service:4: \[X-Houston\] ServicPort=: unknown key \(known: Instances, ServicePort, /,
  },
  {
    title: "a MinHealthy= that is not seconds, on a deploy: refused before Consul, naming the file",
    files: { "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Houston]\nMinHealthy=abc\n" },
    args: ["standalone", "web"],
    err: /app.service:4: \[X-Houston\] MinHealthy=abc: expected whole seconds from 0 to 86400/,
  },
  {
    title: "a MinHealthy= past a day (a timer would fire at once)",
    files: { "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Houston]\nMinHealthy=99999999999\n" },
    args: ["plan", "standalone", "web"],
    err: /app.service:4: \[X-Houston\] MinHealthy=99999999999: expected whole seconds/,
  },
  {
    title: "a ServiceCheckInterval= that is not a duration names the key as written",
    files: {
      "units/service/svc.service":
        "[Service]\nExecStart=/bin/true\n[X-Houston]\nServicePort=80\nServiceCheckInterval=abc\n",
    },
    args: ["plan", "service", "svc", "1"],
    err: /svc.service:5: \[X-Houston\] ServiceCheckInterval=abc: expected a duration such as 2s/,
  },
  {
    title: "a ServiceCheckHTTP= that is no URL names the key as written",
    files: {
      "units/service/svc.service": "[Service]\nExecStart=/bin/true\n[X-Houston]\nServicePort=80\nServiceCheckHTTP=x\n",
    },
    args: ["plan", "service", "svc", "1"],
    err: /svc.service:5: \[X-Houston\] ServiceCheckHTTP=x: check URL must name this host/,
  },
  {
    title: "a misspelt [X-Fleet] key under the agents",
    files: { "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetdata=role=db\n" },
    args: ["plan", "standalone", "web"],
    err: /app.service:4: \[X-Fleet\] MachineMetdata= is not placed by Houston's agents/,
  },
  {
    title: "a version making a unit name longer than systemd takes",
    args: ["plan", "service", "svc", "v".repeat(260)],
    err: /command line: unit name svc@v+\.service is 272 characters long; systemd takes at most 255/,
  },
  { title: "a bad group on remove", args: ["remove", "web", "-g", "A B"], err: /invalid group "A B"/ },
  { title: "an empty group on remove", args: ["remove", "web", "-g", ""], err: /invalid group ""/ },
  {
    title: "a bad group with --remove",
    args: ["standalone", "web", "--remove", "-g", "../x"],
    err: /invalid group "..\/x"/,
  },
  {
    title: "a bad --delay with --force-unlock: refused before the lock is broken",
    args: ["standalone", "web", "--force-unlock", "--delay", "x"],
    err: /--delay must be a positive whole number, got "x"/,
  },
  {
    title: "rollback: a bad GENERATION with --force-unlock is refused before the lock is broken",
    args: ["rollback", "web", "x", "--force-unlock"],
    err: /GENERATION must be a positive whole number, got "x"/,
  },
  {
    title: "an unknown --scheduler",
    args: ["plan", "standalone", "web", "--scheduler", "nomad"],
    err: /--scheduler: "nomad" is not a scheduler \(agents or fleet\)/,
  },
  {
    title: "Instances= when fleet schedules",
    files: { "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Houston]\nInstances=2\n" },
    args: ["plan", "standalone", "web", "--scheduler", "fleet"],
    err: /app.service: \[X-Houston\] Instances=2 needs the agents scheduler/,
  },
  {
    title: "Socket= when fleet schedules",
    files: { "units/service/svc.service": "[Service]\nExecStart=/bin/true\n[X-Houston]\nSocket=8080\n" },
    args: ["plan", "service", "svc", "1", "--scheduler", "fleet"],
    err: /svc.service: \[X-Houston\] Socket= needs the agents scheduler \(this environment's scheduler is fleet\)/,
  },
  {
    title: "a canary when fleet schedules",
    files: {
      "manifest.yaml": "environments:\n  test: {fleet: 'http://127.0.0.1:1'}\nshared-stacks:\n  web: [app:1]\n",
    },
    args: ["standalone", "web", "--canary", "1"],
    err: /--canary: fleet places and starts the units itself/,
  },
  {
    title: "a file and a file below it",
    files: { "files/standalone/web.yaml": "- {path: /a, content: x}\n- {path: /a/b, content: y}\n" },
    args: ["plan", "standalone", "web"],
    err: /web.yaml:2: 1.path: path \/a\/b needs \/a to be a directory/,
  },
];

describe("bad input is refused at the door (exit 2, no stack trace, nothing sent)", () => {
  for (const c of cases) {
    it(c.title, async () => {
      const dir = configDir(base);
      if (c.files) writeConfig(dir, c.files);
      const r = await houston(CLOSED, dir, ...c.args);
      expect(r.stderr).toMatch(c.err);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at |unreachable/);
    });
  }

  it("a token with a line break in $CONSUL_HTTP_TOKEN names the variable", async () => {
    const dir = configDir(base);
    const r = await startCli(CLOSED, dir, ["status"], { ...process.env, CONSUL_HTTP_TOKEN: "abc\nX-Injected: 1" }).done;
    expect(r.stderr).toMatch(/\$CONSUL_HTTP_TOKEN: the Consul token has a line break \(\\n\) at character 4/);
    expect(r.code).toBe(2);
  });

  it("a manifest.yaml that is a directory says so (not 'file not found')", async () => {
    const r = await houston(CLOSED, configDir({ "manifest.yaml/README": "not a manifest\n" }), "status");
    expect(r.stderr).toMatch(/manifest.yaml: is a directory, not a file\n/);
    expect(r.code).toBe(2);
  });

  it("an archive over the size limit is refused at plan time with its size and the limit", async () => {
    const dir = configDir({
      ...base,
      "files/standalone/web.yaml": `- {path: /big, encoding: b64, content: ${Buffer.alloc(2 * 1048576 + 10, 7).toString("base64")}}\n`,
    });
    const r = await houston(CLOSED, dir, "--max-archive-size", "1", "plan", "standalone", "web");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/web.yaml: the file archive is 2 MiB, over the limit of 1 MiB \(--max-archive-size\)/);
  });

  it("the agent started where there is no system bus says so and exits non-zero (systemd restarts it)", async () => {
    const { spawnSync } = await import("node:child_process");
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, "dist", "houston-agent.js"),
        "--dbus",
        "unix:path=/nonexistent/system_bus_socket",
        "--state-dir",
        mkdtempSync(join(tmpdir(), "houston-nobus-")),
        "--consul",
        CLOSED,
      ],
      { encoding: "utf8" },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /houston-agent: cannot reach the system bus at unix:path=\/nonexistent\/system_bus_socket: .*ENOENT/,
    );
  });

  it("the agent refuses to send its token over plain http to another host", async () => {
    const { spawnSync } = await import("node:child_process");
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "dist", "houston-agent.js"), "--consul", "http://192.0.2.1:8500", "--token", "t"],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/refusing to send the Consul token over plain http to 192.0.2.1:8500/);
  });

  it("--version of both CLIs agrees with package.json", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const r = await houston(CLOSED, configDir(base), "--version");
    expect(r.stdout.trim()).toBe(version);
    const { execFileSync } = await import("node:child_process");
    expect(
      execFileSync(process.execPath, [join(ROOT, "dist", "houston-agent.js"), "--version"])
        .toString()
        .trim(),
    ).toBe(version);
  });

  it("under fleet, [X-Fleet] goes to fleet as written (its old names too)", async () => {
    const dir = configDir({
      ...base,
      "units/shared/app.service": "[Service]\nExecStart=/bin/true\n[X-Fleet]\nX-ConditionMachineMetadata=role=db\n",
    });
    const r = await houston(CLOSED, dir, "plan", "standalone", "web", "--scheduler", "fleet");
    expect(r.code, r.stderr).toBe(0);
  });
});
