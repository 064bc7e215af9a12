/**
 * A host from zero as one Butane (fcos 1.5.0) config (pure): the Consul client agent (the consul
 * binary under houston-consul.service, configured by /etc/consul.d/houston-client.json: retry_join,
 * gossip key, its own ACL token, TLS when a CA is given), the Houston agent (Quadlet, plain podman
 * unit, or native node), /etc/houston/agent.env (0600: the agent's token and metadata), the trust
 * directory with its public keys, /var/lib/houston 0700, and every unit enabled.
 * The unit texts come from the shipped systemd/ files (passed in), with the image and the Consul
 * ordering filled in; nothing here reads files.
 */
import { Scalar } from "yaml";

export type AgentKind = "quadlet" | "container" | "native";

export interface ShippedUnits {
  /** systemd/houston-agent.container */
  quadlet: string;
  /** systemd/houston-agent-container.service */
  container: string;
  /** systemd/houston-agent.service */
  native: string;
}

/** where a binary, the image archive or the agent's files come from */
export type Source =
  | { kind: "url"; url: string; sha512: string }
  /** a file or directory beside the Butane file (`butane --files-dir DIR`) */
  | { kind: "local"; path: string }
  /** already on the host (baked into the OS image): nothing to fetch */
  | { kind: "present" };

export interface HostConfig {
  node: string;
  meta: Record<string, string>;
  /** KV prefix (HOUSTON_PREFIX) */
  prefix: string;
  /** the environment whose signed specs the agent applies (HOUSTON_ENVIRONMENT); null: any */
  environment: string | null;
  /** the cluster name signatures must be for (HOUSTON_CLUSTER); "" none */
  cluster: string;
  datacenter: string | null;
  consulJoin: string[];
  consulBind: string | null;
  gossipKey: string | null;
  consulAgentToken: string | null;
  agentToken: string | null;
  /** PEM of the CA of the servers' RPC certificates: TLS between this client and the servers */
  consulCa: string | null;
  trustKeys: { name: string; pem: string }[];
  agent: AgentKind;
  image: string;
  /** container agents: the OCI archive to load (kind present: the image is in the host's store or pulled) */
  imageArchive: Source;
  /** native agent: the directory with houston-agent.js, package.json and node_modules/ */
  agentFiles: Source;
  consulBinary: Source;
}

export const PATHS = {
  consulBin: "/opt/bin/consul",
  consulConfig: "/etc/consul.d/houston-client.json",
  consulCa: "/etc/consul.d/ca.pem",
  consulData: "/var/lib/consul",
  agentEnv: "/etc/houston/agent.env",
  trustDir: "/etc/houston/trust",
  state: "/var/lib/houston",
  quadlet: "/etc/containers/systemd/houston-agent.container",
  imageArchive: "/var/lib/houston/houston-agent.oci.tar",
  agentFiles: "/opt/houston",
} as const;

interface ButaneFile {
  path: string;
  mode: Scalar<number>;
  overwrite: true;
  contents: { inline: string } | { local: string } | { source: string; verification: { hash: string } };
}
interface ButaneUnit {
  name: string;
  enabled: true;
  contents: string;
}
export interface Butane {
  variant: "fcos";
  version: "1.5.0";
  storage: {
    directories: { path: string; mode: Scalar<number> }[];
    files: ButaneFile[];
    trees?: { local: string; path: string }[];
  };
  systemd: { units: ButaneUnit[] };
}

/** an octal mode as YAML 1.2 writes it (0o600); Butane reads it as the number */
function mode(m: number): Scalar<number> {
  const s = new Scalar(m);
  s.format = "OCT";
  return s;
}

const inline = (path: string, m: number, text: string): ButaneFile => ({
  path,
  mode: mode(m),
  overwrite: true,
  contents: { inline: text },
});

function fetched(path: string, m: number, src: Source): ButaneFile[] {
  if (src.kind === "present") return [];
  return [
    {
      path,
      mode: mode(m),
      overwrite: true,
      contents:
        src.kind === "url" ? { source: src.url, verification: { hash: `sha512-${src.sha512}` } } : { local: src.path },
    },
  ];
}

export function consulClientConfig(c: HostConfig): Record<string, unknown> {
  return {
    node_name: c.node,
    ...(c.datacenter ? { datacenter: c.datacenter } : {}),
    server: false,
    data_dir: PATHS.consulData,
    // the HTTP API only on loopback: the agent on this host is its only client
    client_addr: "127.0.0.1",
    ...(c.consulBind ? { bind_addr: c.consulBind } : {}),
    retry_join: c.consulJoin,
    retry_interval: "5s",
    node_meta: c.meta,
    leave_on_terminate: true,
    disable_update_check: true,
    ...(c.gossipKey ? { encrypt: c.gossipKey } : {}),
    ...(c.consulAgentToken
      ? {
          acl: {
            enabled: true,
            default_policy: "deny",
            down_policy: "extend-cache",
            tokens: { agent: c.consulAgentToken },
          },
        }
      : {}),
    ...(c.consulCa
      ? { ca_file: PATHS.consulCa, verify_outgoing: true, verify_server_hostname: true, auto_encrypt: { tls: true } }
      : {}),
  };
}

export function agentEnv(c: HostConfig): string {
  const meta = Object.entries(c.meta)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return [
    "# Houston agent settings (houston-agent --help); written by houston host-config",
    "CONSUL_HTTP_ADDR=http://127.0.0.1:8500",
    ...(c.agentToken ? [`CONSUL_HTTP_TOKEN=${c.agentToken}`] : []),
    `HOUSTON_NODE=${c.node}`,
    `HOUSTON_PREFIX=${c.prefix}`,
    ...(c.environment !== null ? [`HOUSTON_ENVIRONMENT=${c.environment}`] : []),
    ...(c.cluster ? [`HOUSTON_CLUSTER=${c.cluster}`] : []),
    ...(meta ? [`HOUSTON_META=${meta}`] : []),
    ...(c.trustKeys.length ? [`HOUSTON_TRUST=${PATHS.trustDir}`] : []),
    "",
  ].join("\n");
}

function consulUnit(): string {
  return [
    "[Unit]",
    "Description=Consul client agent (Houston's control plane on this host)",
    "Wants=network-online.target",
    "After=network-online.target",
    `ConditionPathExists=${PATHS.consulBin}`,
    "",
    "[Service]",
    `ExecStart=${PATHS.consulBin} agent -config-file=${PATHS.consulConfig}`,
    "ExecReload=/bin/kill -HUP $MAINPID",
    "KillSignal=SIGTERM",
    "Restart=on-failure",
    "RestartSec=2",
    "LimitNOFILE=65536",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

function imageUnit(): string {
  return [
    "[Unit]",
    "Description=Load the Houston agent image",
    `ConditionPathExists=${PATHS.imageArchive}`,
    "Before=houston-agent.service",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStart=/usr/bin/podman load -i ${PATHS.imageArchive}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** replaces the line that starts with `key`; throws when the shipped file has no such line */
function setLine(text: string, key: string, line: string, file: string): string {
  const re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*$`, "m");
  if (!re.test(text)) throw new Error(`${file} has no ${key} line`);
  return text.replace(re, line);
}

function agentUnitText(c: HostConfig, units: ShippedUnits): string {
  switch (c.agent) {
    case "quadlet":
      return setLine(units.quadlet, "Image=", `Image=${c.image}`, "houston-agent.container");
    case "container":
      return setLine(
        units.container,
        "Environment=HOUSTON_IMAGE=",
        `Environment=HOUSTON_IMAGE=${c.image}`,
        "houston-agent-container.service",
      );
    case "native":
      return units.native;
  }
}

export function hostButane(c: HostConfig, units: ShippedUnits): Butane {
  const container = c.agent !== "native";
  const agentText = agentUnitText(c, units);
  const files: ButaneFile[] = [
    ...fetched(PATHS.consulBin, 0o755, c.consulBinary),
    inline(PATHS.consulConfig, 0o600, `${JSON.stringify(consulClientConfig(c), null, 2)}\n`),
    ...(c.consulCa ? [inline(PATHS.consulCa, 0o644, c.consulCa)] : []),
    inline(PATHS.agentEnv, 0o600, agentEnv(c)),
    ...c.trustKeys.map((k) => inline(`${PATHS.trustDir}/${k.name}.pub`, 0o644, k.pem)),
    ...(container ? fetched(PATHS.imageArchive, 0o600, c.imageArchive) : []),
    // Quadlet makes houston-agent.service from this file at boot; its [Install] section enables it
    ...(c.agent === "quadlet" ? [inline(PATHS.quadlet, 0o644, agentText)] : []),
  ];
  const unitList: ButaneUnit[] = [
    { name: "houston-consul.service", enabled: true, contents: consulUnit() },
    ...(container && c.imageArchive.kind !== "present"
      ? [{ name: "houston-agent-image.service", enabled: true as const, contents: imageUnit() }]
      : []),
    ...(c.agent !== "quadlet" ? [{ name: "houston-agent.service", enabled: true as const, contents: agentText }] : []),
  ];
  const agentFiles = c.agent === "native" && c.agentFiles.kind === "local" ? c.agentFiles.path : null;
  return {
    variant: "fcos",
    version: "1.5.0",
    storage: {
      directories: [
        { path: "/etc/consul.d", mode: mode(0o700) },
        { path: PATHS.consulData, mode: mode(0o700) },
        { path: "/etc/houston", mode: mode(0o755) },
        { path: PATHS.trustDir, mode: mode(0o755) },
        { path: PATHS.state, mode: mode(0o700) },
        ...(c.agent === "quadlet" ? [{ path: "/etc/containers/systemd", mode: mode(0o755) }] : []),
      ],
      files,
      ...(agentFiles ? { trees: [{ local: agentFiles, path: PATHS.agentFiles }] } : {}),
    },
    systemd: { units: unitList },
  };
}
