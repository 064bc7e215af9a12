/**
 * `houston host-config`'s Butane output (pure generator and flag checks): an fcos 1.5.0 config in
 * Butane's schema (no butane binary in Debian 12 or npm to run `butane --strict`), private modes
 * for the token files and state, the Consul client's settings (retry_join, gossip key, its own
 * token, TLS), the agent as Quadlet, plain podman unit or native, built from the shipped
 * systemd/ files; every bad flag is an error naming the flag.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { hostConfigFrom, renderButane, type HostConfigFlags } from "../../controller/commands/host-config.js";
import type { ShippedUnits } from "../../controller/host-config/butane.js";
import { ConfigError } from "../../shared/errors.js";
import { main } from "../../controller/cli.js";
import { applyButane, parseButane } from "../helpers/butane-apply.js";

const ROOT = join(import.meta.dirname, "..", "..");
const shipped: ShippedUnits = {
  quadlet: readFileSync(join(ROOT, "systemd", "houston-agent.container"), "utf8"),
  container: readFileSync(join(ROOT, "systemd", "houston-agent-container.service"), "utf8"),
  native: readFileSync(join(ROOT, "systemd", "houston-agent.service"), "utf8"),
};
const tmp = mkdtempSync(join(tmpdir(), "houston-hc-"));
const file = (name: string, text: string) => {
  writeFileSync(join(tmp, name), text);
  return join(tmp, name);
};
const T1 = "11111111-2222-3333-4444-555555555555";
const T2 = "66666666-7777-8888-9999-000000000000";
const pub = file("ci.pub", generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString());
const tokens = file(
  "tokens.json",
  JSON.stringify({
    tokens: [
      { role: "agent-web-1", secretId: T1 },
      { role: "consul-agent-web-1", secretId: T2 },
    ],
  }),
);
const gossip = file("gossip.key", `${Buffer.alloc(32, 7).toString("base64")}\n`);
const ca = file("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");

const flags = (over: Partial<HostConfigFlags> = {}): HostConfigFlags => ({
  node: "web-1",
  meta: ["role=web", "disk=ssd"],
  consulJoin: ["10.0.0.5", "10.0.0.6:8301"],
  trustKey: [pub],
  agent: "quadlet",
  tokensFile: tokens,
  gossipKeyFile: gossip,
  consulCaFile: ca,
  ...over,
});

interface Parsed {
  variant: string;
  version: string;
  storage: {
    directories: { path: string; mode: number }[];
    files: { path: string; mode: number; contents: { inline?: string; local?: string; source?: string } }[];
    trees?: { local: string; path: string }[];
  };
  systemd: { units: { name: string; enabled: boolean; contents: string }[] };
}
const butane = (over: Partial<HostConfigFlags> = {}) =>
  parse(renderButane(hostConfigFrom(flags(over), "houston/"), shipped)) as Parsed;
const fileAt = (b: Parsed, path: string) => b.storage.files.find((f) => f.path === path);

describe("houston host-config", () => {
  it("is an fcos 1.5.0 Butane config in Butane's schema (what applyButane and butane --strict accept)", () => {
    for (const agent of ["quadlet", "container", "native"] as const) {
      const b = butane({ agent, ...(agent === "native" ? { agentFiles: "houston-agent" } : {}) });
      expect(b.variant).toBe("fcos");
      expect(b.version).toBe("1.5.0");
      // the translator's strict schema: only the fields it applies, modes as numbers
      expect(() => parseButane(b)).not.toThrow();
      for (const f of b.storage.files) expect(Object.keys(f.contents)).toHaveLength(1);
      for (const u of b.systemd.units) {
        expect(u.name).toMatch(/^[a-z-]+\.service$/);
        expect(u.enabled).toBe(true);
        expect(u.contents).toMatch(/\[Install\]\nWantedBy=multi-user.target/);
      }
    }
  });

  it("the token files and the state directory are private; the octal modes parse as numbers", () => {
    const b = butane();
    expect(fileAt(b, "/etc/houston/agent.env")?.mode).toBe(0o600);
    expect(fileAt(b, "/etc/consul.d/houston-client.json")?.mode).toBe(0o600);
    const dirs = Object.fromEntries(b.storage.directories.map((d) => [d.path, d.mode]));
    expect(dirs["/var/lib/houston"]).toBe(0o700);
    expect(dirs["/etc/consul.d"]).toBe(0o700);
    expect(dirs["/etc/houston/trust"]).toBe(0o755);
  });

  it("the agent's env holds its token, node, prefix, metadata and trust directory", () => {
    const env = fileAt(butane(), "/etc/houston/agent.env")?.contents.inline ?? "";
    for (const line of [
      "CONSUL_HTTP_ADDR=http://127.0.0.1:8500",
      `CONSUL_HTTP_TOKEN=${T1}`,
      "HOUSTON_NODE=web-1",
      "HOUSTON_PREFIX=houston/",
      "HOUSTON_META=role=web,disk=ssd",
      "HOUSTON_TRUST=/etc/houston/trust",
    ])
      expect(env.split("\n")).toContain(line);
    expect(fileAt(butane(), "/etc/houston/trust/ci.pub")?.contents.inline).toBe(readFileSync(pub, "utf8"));
  });

  it("the agent's env says the environment and cluster its signed specs must be for (-e, --cluster); none: not set", () => {
    const scoped = renderButane(hostConfigFrom(flags(), "houston/", { environment: "prod", cluster: "east" }), shipped);
    const env = fileAt(parse(scoped) as Parsed, "/etc/houston/agent.env")?.contents.inline ?? "";
    expect(env.split("\n")).toEqual(expect.arrayContaining(["HOUSTON_ENVIRONMENT=prod", "HOUSTON_CLUSTER=east"]));
    expect(fileAt(butane(), "/etc/houston/agent.env")?.contents.inline).not.toMatch(
      /HOUSTON_ENVIRONMENT|HOUSTON_CLUSTER/,
    );
    expect(() => hostConfigFrom(flags(), "houston/", { cluster: "a b" })).toThrow(/--cluster/);
  });

  it("the Consul client joins, encrypts gossip, uses its own token, and verifies the servers with the CA", () => {
    const b = butane();
    const cfg = JSON.parse(fileAt(b, "/etc/consul.d/houston-client.json")?.contents.inline ?? "{}") as Record<
      string,
      unknown
    >;
    expect(cfg).toMatchObject({
      node_name: "web-1",
      server: false,
      client_addr: "127.0.0.1",
      retry_join: ["10.0.0.5", "10.0.0.6:8301"],
      encrypt: Buffer.alloc(32, 7).toString("base64"),
      node_meta: { role: "web", disk: "ssd" },
      acl: { enabled: true, default_policy: "deny", tokens: { agent: T2 } },
      ca_file: "/etc/consul.d/ca.pem",
      verify_outgoing: true,
      verify_server_hostname: true,
    });
    expect(fileAt(b, "/etc/consul.d/ca.pem")?.contents.inline).toContain("BEGIN CERTIFICATE");
    const unit = b.systemd.units.find((u) => u.name === "houston-consul.service")?.contents ?? "";
    expect(unit).toContain("ExecStart=/opt/bin/consul agent -config-file=/etc/consul.d/houston-client.json");
    // without TLS, tokens or a gossip key: none of their settings
    const bare = butane({ tokensFile: undefined, gossipKeyFile: undefined, consulCaFile: undefined });
    const plain = fileAt(bare, "/etc/consul.d/houston-client.json")?.contents.inline ?? "";
    expect(plain).not.toMatch(/encrypt|acl|ca_file/);
    expect(fileAt(bare, "/etc/houston/agent.env")?.contents.inline).not.toContain("CONSUL_HTTP_TOKEN");
  });

  it("the agent: Quadlet file (enabled by its [Install]), plain podman unit, or native, from the shipped units", () => {
    const q = butane({ image: "registry.example/houston-agent:9" });
    const quadlet = fileAt(q, "/etc/containers/systemd/houston-agent.container")?.contents.inline ?? "";
    expect(quadlet).toBe(shipped.quadlet.replace(/^Image=.*$/m, "Image=registry.example/houston-agent:9"));
    expect(q.systemd.units.map((u) => u.name)).toEqual(["houston-consul.service"]);
    const c = butane({ agent: "container" });
    const unit = c.systemd.units.find((u) => u.name === "houston-agent.service")?.contents ?? "";
    expect(unit).toBe(shipped.container);
    expect(unit).toContain("--log-driver=passthrough");
    const n = butane({ agent: "native", agentFiles: "houston-agent" });
    expect(n.systemd.units.find((u) => u.name === "houston-agent.service")?.contents).toBe(shipped.native);
    expect(n.storage.trees).toEqual([{ local: "houston-agent", path: "/opt/houston" }]);
  });

  it("fetched files carry Ignition's verification hash; local ones are named for --files-dir", () => {
    const h = "ab".repeat(64);
    const b = butane({
      agent: "container",
      imageUrl: "https://a.example/h.oci.tar",
      imageSha512: h,
      consulBinaryLocal: "consul",
    });
    expect(fileAt(b, "/var/lib/houston/houston-agent.oci.tar")?.contents).toEqual({
      source: "https://a.example/h.oci.tar",
      verification: { hash: `sha512-${h}` },
    });
    expect(fileAt(b, "/opt/bin/consul")).toMatchObject({ mode: 0o755, contents: { local: "consul" } });
    expect(b.systemd.units.map((u) => u.name)).toEqual([
      "houston-consul.service",
      "houston-agent-image.service",
      "houston-agent.service",
    ]);
    expect(() => parseButane(b)).not.toThrow();
  });

  it("applied to an empty root (as the host test does), every file lands with its mode", () => {
    const files = mkdtempSync(join(tmpdir(), "houston-files-"));
    mkdirSync(join(files, "houston-agent"));
    writeFileSync(join(files, "houston-agent", "houston-agent.js"), "// bundle\n");
    writeFileSync(join(files, "consul"), "#!/bin/sh\n");
    const root = mkdtempSync(join(tmpdir(), "houston-root-"));
    const units = applyButane(
      butane({ agent: "native", agentFiles: "houston-agent", consulBinaryLocal: "consul" }),
      root,
      files,
    );
    expect(units).toEqual(["houston-consul.service", "houston-agent.service"]);
    const modeOf = (p: string) => statSync(join(root, p)).mode & 0o7777;
    expect(modeOf("etc/houston/agent.env")).toBe(0o600);
    expect(modeOf("var/lib/houston")).toBe(0o700);
    expect(modeOf("opt/bin/consul")).toBe(0o755);
    expect(readFileSync(join(root, "opt/houston/houston-agent.js"), "utf8")).toBe("// bundle\n");
    expect(readFileSync(join(root, "etc/systemd/system/houston-agent.service"), "utf8")).toBe(shipped.native);
  });

  it("the command exits 2 naming the flag, printing nothing", async () => {
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    let out = "";
    let err = "";
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
    try {
      expect(await main(["host-config", "--node", "web-1", "--meta", "x"])).toBe(2);
      expect(await main(["host-config", "--meta", "a=b"])).toBe(2);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
    expect(out).toBe("");
    expect(err).toMatch(/--meta: "x" is not KEY=VALUE/);
    expect(err).toMatch(/required option '--node <name>'/);
  });

  it("a bad value is an error naming its flag", () => {
    const cases: [Partial<HostConfigFlags>, string, RegExp][] = [
      [{ node: "web 1" }, "--node", /not a node name/],
      [{ meta: ["role=web,x=1"] }, "--meta", /KEY=VALUE/],
      [{ meta: ["novalue"] }, "--meta", /KEY=VALUE/],
      [{ consulJoin: [] }, "--consul-join", /at least one/],
      [{ consulJoin: ["a b"] }, "--consul-join", /not an address/],
      [{ gossipKeyFile: file("bad.key", "short") }, "--gossip-key-file", /gossip key/],
      [{ tokensFile: file("other.json", '{"tokens":[]}') }, "--tokens-file", /no agent-web-1 token/],
      [{ tokensFile: undefined, agentTokenFile: file("t", "nope") }, "--agent-token-file", /UUID/],
      [{ trustKey: [file("x.pub", "not a key")] }, "--trust-key", /not a public key/],
      [{ consulCaFile: file("ca.txt", "hello") }, "--consul-ca-file", /no PEM certificate/],
      [{ imageUrl: "https://a/b" }, "--image-sha512", /SHA-512/],
      [{ imageUrl: "ftp://a/b", imageSha512: "ab".repeat(64) }, "--image-url", /http/],
      [{ consulBinaryLocal: "/abs/consul" }, "--consul-binary-local", /relative/],
      [{ agentFiles: "dir" }, "--agent-files", /only with --agent native/],
      [{ image: "Bad Image" }, "--image", /not an image name/],
      // what the host's Consul would refuse at its first boot (`consul validate` says so)
      [{ meta: ["topology.zone=a"] }, "--meta", /KEY=VALUE/],
      [{ meta: ["consul-role=web"] }, "--meta", /consul- are Consul's own/],
      [{ meta: ['role="web'] }, "--meta", /without commas, spaces, quotes/],
      [{ meta: ["role=web", "role=db"] }, "--meta", /role is given twice/],
      [{ datacenter: "d c" }, "--datacenter", /not a Consul datacenter name/],
      [{ datacenter: "eu.west" }, "--datacenter", /not a Consul datacenter name/],
      [{ agent: "native", agentFiles: "/abs/dir" }, "--agent-files", /relative/],
      [{ tokensFile: "/nonexistent/t.json" }, "--tokens-file", /cannot read/],
    ];
    for (const [over, flag, re] of cases) {
      let err: unknown;
      try {
        hostConfigFrom(flags(over), "houston/");
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(over)).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).file, JSON.stringify(over)).toBe(flag);
      expect(String(err)).toMatch(re);
    }
  });
});
