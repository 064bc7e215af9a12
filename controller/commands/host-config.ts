/**
 * `houston host-config --node NAME …` prints the Butane config that makes a host from zero
 * (controller/host-config/butane.ts decides what is in it): reads and checks the flag values (token,
 * key and certificate files, metadata), the shipped unit files from systemd/, and prints YAML.
 * Every bad value is a ConfigError naming its flag (exit 2); nothing is printed then.
 */
import { createPublicKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Option, type Command } from "commander";
import { Document } from "yaml";
import { ConfigError, errorText } from "../../shared/errors.js";
import { NAME_RE } from "../../shared/unit-name.js";
import { CLUSTER_RE } from "../../shared/signing.js";
import { HOUSTON_VERSION } from "../../shared/version.js";
import { hostButane, type AgentKind, type HostConfig, type ShippedUnits, type Source } from "../host-config/butane.js";
import type { CommandEnv } from "./env.js";

export interface HostConfigFlags {
  node: string;
  meta: string[];
  consulJoin: string[];
  consulBind?: string;
  datacenter?: string;
  gossipKeyFile?: string;
  tokensFile?: string;
  agentTokenFile?: string;
  consulAgentTokenFile?: string;
  consulCaFile?: string;
  trustKey: string[];
  agent: AgentKind;
  image?: string;
  imageUrl?: string;
  imageSha512?: string;
  imageLocal?: string;
  agentFiles?: string;
  consulBinaryUrl?: string;
  consulBinarySha512?: string;
  consulBinaryLocal?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** node metadata as Consul takes it (keys: letters, digits, '_', '-', not `consul-…`) and agent.env can hold it */
const META = /^([A-Za-z0-9_-]{1,64})=([^,\s"'\\]*)$/;
/** Consul's datacenter names (it lowercases them first) */
const DATACENTER = /^[A-Za-z0-9_-]+$/;

function readText(flag: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(flag, `cannot read ${file}: ${errorText(err)}`);
  }
}

function tokenFrom(flag: string, file: string): string {
  const t = readText(flag, file).trim();
  if (!UUID.test(t)) throw new ConfigError(flag, `${file} does not hold a Consul token (a UUID secret)`);
  return t;
}

/** role → secret from `houston [--json] acl bootstrap-tokens` output (JSON or its text lines) */
function tokensFile(file: string): Map<string, string> {
  const text = readText("--tokens-file", file);
  const out = new Map<string, string>();
  try {
    const j = JSON.parse(text) as { tokens?: { role?: unknown; secretId?: unknown }[] };
    for (const t of j.tokens ?? [])
      if (typeof t.role === "string" && typeof t.secretId === "string") out.set(t.role, t.secretId);
  } catch {
    for (const line of text.split("\n")) {
      const [role, secret] = line.trim().split(/\s+/);
      if (role && secret && UUID.test(secret)) out.set(role, secret);
    }
  }
  return out;
}

function gossipKey(file: string): string {
  const k = readText("--gossip-key-file", file).trim();
  const n = /^[A-Za-z0-9+/]+={0,2}$/.test(k) ? Buffer.from(k, "base64").length : 0;
  if (![16, 24, 32].includes(n))
    throw new ConfigError(
      "--gossip-key-file",
      `${file} does not hold a gossip key (base64 of 32 bytes: consul keygen)`,
    );
  return k;
}

function trustKey(file: string): { name: string; pem: string } {
  const pem = readText("--trust-key", file);
  let type: string | undefined;
  try {
    type = createPublicKey(pem).asymmetricKeyType;
  } catch (err) {
    throw new ConfigError("--trust-key", `${file}: not a public key (${errorText(err)})`);
  }
  if (type !== "ed25519") throw new ConfigError("--trust-key", `${file} is ${type ?? "?"}, expected ed25519`);
  const name = basename(file).replace(/\.pub$/, "");
  if (!NAME_RE.test(name)) throw new ConfigError("--trust-key", `${file}: the file name must be a plain NAME.pub`);
  return { name, pem: pem.endsWith("\n") ? pem : `${pem}\n` };
}

/**
 * Where a file comes from: `--X-url` with `--X-sha512`, `--X-local`, or already on the host. `flag`
 * is the option family (--image, --consul-binary); `localFlag` the local file's own flag, when it
 * is not `${flag}-local` (--agent-files).
 */
function source(flag: string, url?: string, sha512?: string, local?: string, localFlag = `${flag}-local`): Source {
  if (url !== undefined && local !== undefined) throw new ConfigError(flag, "give a URL or a local file, not both");
  if (url !== undefined) {
    if (!/^https?:\/\/\S+$/.test(url))
      throw new ConfigError(`${flag}-url`, `${JSON.stringify(url)} is not an http(s) URL`);
    if (!sha512 || !/^[0-9a-f]{128}$/.test(sha512))
      throw new ConfigError(
        `${flag}-sha512`,
        "a URL needs the file's SHA-512 (128 hex digits), which Ignition verifies",
      );
    return { kind: "url", url, sha512 };
  }
  if (sha512 !== undefined) throw new ConfigError(`${flag}-sha512`, `only with ${flag}-url`);
  if (local !== undefined) {
    if (local.startsWith("/") || local.split("/").includes(".."))
      throw new ConfigError(localFlag, `${JSON.stringify(local)} must be relative to butane's --files-dir`);
    return { kind: "local", path: local };
  }
  return { kind: "present" };
}

/**
 * Checks every flag and assembles the host's values (flags: what commander parsed; `scope`: the
 * global -e and --cluster, which the agent's signatures must be for).
 */
export function hostConfigFrom(
  f: HostConfigFlags,
  prefix: string,
  scope: { environment?: string | undefined; cluster?: string | undefined } = {},
): HostConfig {
  if (!NAME_RE.test(f.node)) throw new ConfigError("--node", `${JSON.stringify(f.node)} is not a node name`);
  if (!/^[A-Za-z0-9_.\/-]+$/.test(prefix))
    throw new ConfigError("--prefix", `${JSON.stringify(prefix)} is not a KV prefix`);
  const meta: Record<string, string> = {};
  for (const m of f.meta) {
    const r = META.exec(m);
    if (!r)
      throw new ConfigError(
        "--meta",
        `${JSON.stringify(m)} is not KEY=VALUE (a key of letters, digits, '_', '-'; a value without commas, spaces, quotes or '\\')`,
      );
    if (r[1]!.toLowerCase().startsWith("consul-"))
      throw new ConfigError("--meta", `${JSON.stringify(m)}: keys starting with consul- are Consul's own`);
    if (Object.hasOwn(meta, r[1]!)) throw new ConfigError("--meta", `${r[1]} is given twice`);
    meta[r[1]!] = r[2]!;
  }
  if (f.datacenter !== undefined && !DATACENTER.test(f.datacenter))
    throw new ConfigError(
      "--datacenter",
      `${JSON.stringify(f.datacenter)} is not a Consul datacenter name (letters, digits, '_', '-')`,
    );
  if (f.consulJoin.length === 0)
    throw new ConfigError("--consul-join", "at least one Consul server address is needed (repeatable)");
  for (const a of f.consulJoin)
    if (!/^[A-Za-z0-9.:[\]_-]+$/.test(a) && !a.startsWith("provider="))
      throw new ConfigError("--consul-join", `${JSON.stringify(a)} is not an address (HOST, HOST:PORT or provider=…)`);
  const tokens = f.tokensFile ? tokensFile(f.tokensFile) : new Map<string, string>();
  const fromTokens = (role: string): string | null => {
    if (!f.tokensFile) return null;
    const t = tokens.get(role);
    if (!t) throw new ConfigError("--tokens-file", `${f.tokensFile} has no ${role} token`);
    return t;
  };
  if (f.tokensFile && f.agentTokenFile)
    throw new ConfigError("--agent-token-file", "give --tokens-file or --agent-token-file, not both");
  const agentToken = f.agentTokenFile
    ? tokenFrom("--agent-token-file", f.agentTokenFile)
    : fromTokens(`agent-${f.node}`);
  const consulAgentToken = f.consulAgentTokenFile
    ? tokenFrom("--consul-agent-token-file", f.consulAgentTokenFile)
    : fromTokens(`consul-agent-${f.node}`);
  let consulCa: string | null = null;
  if (f.consulCaFile) {
    consulCa = readText("--consul-ca-file", f.consulCaFile);
    if (!consulCa.includes("-----BEGIN CERTIFICATE-----"))
      throw new ConfigError("--consul-ca-file", `${f.consulCaFile} holds no PEM certificate`);
  }
  if (f.agent !== "native" && f.agentFiles !== undefined)
    throw new ConfigError("--agent-files", "only with --agent native");
  const agentFiles = source("--agent-files", undefined, undefined, f.agentFiles, "--agent-files");
  const image = f.image ?? `localhost/houston-agent:${HOUSTON_VERSION}`;
  if (!/^[a-z0-9][a-z0-9._\-/:@]*$/.test(image))
    throw new ConfigError("--image", `${JSON.stringify(image)} is not an image name`);
  const cluster = scope.cluster ?? "";
  if (!CLUSTER_RE.test(cluster)) throw new ConfigError("--cluster", `${JSON.stringify(cluster)} is not a cluster name`);
  const environment = scope.environment ?? null;
  if (environment !== null && !/^[A-Za-z0-9_.-]+$/.test(environment))
    throw new ConfigError("--environment", `${JSON.stringify(environment)} is not an environment name`);
  return {
    node: f.node,
    meta,
    prefix,
    environment,
    cluster,
    datacenter: f.datacenter ?? null,
    consulJoin: f.consulJoin,
    consulBind: f.consulBind ?? null,
    gossipKey: f.gossipKeyFile ? gossipKey(f.gossipKeyFile) : null,
    consulAgentToken,
    agentToken,
    consulCa,
    trustKeys: f.trustKey.map(trustKey),
    agent: f.agent,
    image,
    imageArchive: source("--image", f.imageUrl, f.imageSha512, f.imageLocal),
    agentFiles,
    consulBinary: source("--consul-binary", f.consulBinaryUrl, f.consulBinarySha512, f.consulBinaryLocal),
  };
}

/** systemd/ of this installation: beside dist/ (the bundle) or the repository root (sources) */
function shippedUnits(): ShippedUnits {
  const self = typeof __filename === "string" ? __filename : (process.argv[1] ?? "");
  const dirs = [join(dirname(self), "..", "systemd"), join(dirname(self), "..", "..", "systemd")];
  const dir = dirs.find((d) => existsSync(join(d, "houston-agent.container")));
  if (!dir) throw new Error(`the unit files (systemd/) are not beside ${self}`);
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return {
    quadlet: read("houston-agent.container"),
    container: read("houston-agent-container.service"),
    native: read("houston-agent.service"),
  };
}

export function renderButane(cfg: HostConfig, units: ShippedUnits): string {
  const doc = new Document(hostButane(cfg, units));
  doc.commentBefore = ` Houston host ${cfg.node} (houston host-config): butane --strict${
    cfg.agent === "native" || cfg.consulBinary.kind === "local" ? " --files-dir DIR" : ""
  } < THIS > ${cfg.node}.ign\n It holds Consul tokens and the gossip key: keep it like a password.`;
  return doc.toString({ lineWidth: 0 });
}

const many = (v: string, prev: string[]) => [...prev, v];

export function registerHostConfig(program: Command, env: CommandEnv): void {
  program
    .command("host-config")
    .description("print the Butane config that makes a host from zero: Consul client, Houston agent, token, trust")
    .requiredOption("--node <name>", "the host's node name (Consul and Houston)")
    .option("--meta <k=v>", "node metadata (repeatable)", many, [] as string[])
    .option("--consul-join <addr>", "a Consul server to join (repeatable; retry_join)", many, [] as string[])
    .option("--consul-bind <addr>", "the address Consul binds (default: the host's private address)")
    .option("--datacenter <dc>", "the Consul datacenter (default: Consul's, dc1)")
    .option("--gossip-key-file <file>", "the cluster's gossip encryption key (consul keygen)")
    .option("--tokens-file <file>", "output of `houston [--json] acl bootstrap-tokens --node NAME`: both tokens")
    .option("--agent-token-file <file>", "the Houston agent's Consul token")
    .option("--consul-agent-token-file <file>", "the Consul client agent's own token (node identity)")
    .option("--consul-ca-file <file>", "CA of the Consul servers' certificates: TLS to the servers")
    .option("--trust-key <pub>", "a public key the agent trusts for signed specs (repeatable)", many, [] as string[])
    .addOption(
      new Option("--agent <kind>", "quadlet (podman >= 4.4), container (plain podman unit) or native (node)")
        .choices(["quadlet", "container", "native"])
        .default("quadlet"),
    )
    .option("--image <name>", `the agent's image (default localhost/houston-agent:${HOUSTON_VERSION})`)
    .option("--image-url <url>", "fetch the image archive (npm run image) from here at first boot")
    .option("--image-sha512 <hex>", "the archive's SHA-512 (with --image-url)")
    .option("--image-local <file>", "the image archive beside the Butane file (butane --files-dir)")
    .option("--agent-files <dir>", "with --agent native: the agent's files beside the Butane file, to /opt/houston")
    .option("--consul-binary-url <url>", "fetch the consul binary (unzipped) from here, to /opt/bin/consul")
    .option("--consul-binary-sha512 <hex>", "its SHA-512 (with --consul-binary-url)")
    .option("--consul-binary-local <file>", "the consul binary beside the Butane file (butane --files-dir)")
    .action((flags: HostConfigFlags, cmd: Command) => {
      const g = env.globals(cmd);
      const out = env.output(cmd);
      const cfg = hostConfigFrom(flags, g.prefix, {
        environment: g.environment,
        cluster: g.cluster ?? process.env.HOUSTON_CLUSTER,
      });
      if (cfg.trustKeys.length > 0 && cfg.environment === null)
        out.warn("no -e/--environment: the agent will apply specs signed for any environment under its prefix");
      if (cfg.consulBinary.kind === "present")
        out.warn("no --consul-binary-url/-local: the host must have the consul binary at /opt/bin/consul already");
      if (!cfg.agentToken || !cfg.consulAgentToken)
        out.warn("no Consul tokens given: fine only for a Consul without ACLs");
      out.print(renderButane(cfg, shippedUnits()));
    });
}
