/**
 * Agent configuration from flags and environment (flags win).
 */
import { parseArgs } from "node:util";
import { tlsFromEnv, type TlsOptions } from "../shared/consul-transport.js";
import { AgentConfigError } from "../shared/errors.js";
import { DEFAULT_PREFIX } from "../shared/kv-layout.js";
import { CLUSTER_RE } from "../shared/signing.js";

export interface AgentConfig {
  /** node name; default: the local Consul agent's */
  node: string | undefined;
  consulAddr: string | undefined;
  consulToken: string | undefined;
  prefix: string;
  /** where archive files go ("/" on a real host) */
  root: string;
  unitDir: string;
  stateDir: string;
  dbusAddress: string | undefined;
  listen: {
    host: string;
    port: number;
    /** the address its agents/<node> record names (httpAddr) */
    checkHost: string;
  };
  /** metadata added to (and overriding) the Consul node meta */
  meta: Record<string, string>;
  /** read the journal for failed units' last lines */
  journal: boolean;
  startTimeoutMs: number;
  /** files or directories (every *.pub) of trusted ed25519 public keys; empty: unsigned specs are applied */
  trust: string[];
  /** the environment whose signed specs this agent applies; null: any (the prefix and cluster still bind) */
  environment: string | null;
  /** the cluster name signatures must be for ("" none; the controller's --cluster) */
  cluster: string;
  /** TLS to Consul (flags; the environment's CONSUL_CACERT etc. fill the rest) */
  tls: TlsOptions;
  insecureToken: boolean;
  maxArchiveBytes: number;
  /** compete for the scheduler role (one agent of the fleet places non-global units) */
  scheduler: boolean;
  /** how long a machine's agent may stay unwell before its units move (fleet's agent_ttl) */
  schedulerGraceMs: number;
  /** fleetd's API, for fleet-scheduled stacks (the scheduler role mirrors them into it) */
  fleet: string;
  /** unix socket for local requests (root only): the fleet file unit asks for its files there; "" off */
  localSocket: string;
}

export const USAGE = `houston-agent [options]
  --node NAME          node name (HOUSTON_NODE; default: the local Consul agent's node name)
  --consul ADDR        Consul HTTP address (CONSUL_HTTP_ADDR; default http://127.0.0.1:8500)
  --token TOKEN        Consul ACL token (CONSUL_HTTP_TOKEN); never sent over plain http to
                       another host unless --insecure-token
  --insecure-token     allow sending the token over plain http to a non-loopback address
  --ca-file, --client-cert, --client-key, --tls-server-name
                       TLS to Consul (CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY,
                       CONSUL_TLS_SERVER_NAME)
  --prefix PREFIX      KV prefix (HOUSTON_PREFIX; default houston/)
  --root DIR           root for archive files (HOUSTON_ROOT; default /)
  --unit-dir DIR       unit directory (HOUSTON_UNIT_DIR; default /etc/systemd/system)
  --state-dir DIR      SQLite state directory (HOUSTON_STATE_DIR; default /var/lib/houston)
  --dbus ADDR          D-Bus address of the system bus (DBUS_SYSTEM_BUS_ADDRESS)
  --listen HOST:PORT   HTTP endpoints /health /status /metrics (HOUSTON_LISTEN; default 127.0.0.1:9631)
  --meta K=V           node metadata, repeatable (HOUSTON_META="k=v,k2=v2")
  --trust PATH         trusted ed25519 public key (PEM) or a directory of *.pub keys, repeatable
                       (HOUSTON_TRUST="path,path"); with any, only specs signed by one are applied
  --environment ENV    apply only specs signed for this environment (HOUSTON_ENVIRONMENT; default:
                       any environment, the KV prefix and cluster still bind the signature)
  --cluster NAME       cluster name signatures must be for, as the controller's --cluster
                       (HOUSTON_CLUSTER; default none)
  --max-archive-size MIB  largest archive this agent fetches (default 64)
  --scheduler-grace SEC  how long a machine's agent may stay unwell before the scheduler moves its
                       non-global units elsewhere (HOUSTON_SCHEDULER_GRACE; default 30, fleet's agent_ttl)
  --no-scheduler       never take the scheduler role (the other agents place units)
  --fleet URL          fleetd's API for fleet-scheduled stacks: unix:///path or http(s)://host:port
                       (HOUSTON_FLEET; default unix:///var/run/fleet.sock)
  --local-socket PATH  unix socket (mode 0600) where fleet's file units ask for their files
                       (HOUSTON_LOCAL_SOCKET; default /run/houston/agent.sock; "" turns it off)
  --no-journal         do not read journal lines of failed units
  --start-timeout SEC  how long one unit start may take (default 90)
  --version, --help    print the agent's version, or this`;

export function parseAgentConfig(argv: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      node: { type: "string" },
      consul: { type: "string" },
      token: { type: "string" },
      prefix: { type: "string" },
      root: { type: "string" },
      "unit-dir": { type: "string" },
      "state-dir": { type: "string" },
      dbus: { type: "string" },
      listen: { type: "string" },
      meta: { type: "string", multiple: true },
      "no-journal": { type: "boolean" },
      "no-scheduler": { type: "boolean" },
      "scheduler-grace": { type: "string" },
      fleet: { type: "string" },
      "local-socket": { type: "string" },
      "start-timeout": { type: "string" },
      help: { type: "boolean" },
      trust: { type: "string", multiple: true },
      environment: { type: "string" },
      cluster: { type: "string" },
      "ca-file": { type: "string" },
      "client-cert": { type: "string" },
      "client-key": { type: "string" },
      "tls-server-name": { type: "string" },
      "insecure-token": { type: "boolean" },
      "max-archive-size": { type: "string" },
      version: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) throw new UsageRequested();
  if (values.version) throw new VersionRequested();
  const meta: Record<string, string> = {};
  const metaPairs = [...(env.HOUSTON_META ? env.HOUSTON_META.split(",") : []), ...(values.meta ?? [])];
  for (const pair of metaPairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new AgentConfigError(`--meta ${JSON.stringify(pair)}: expected KEY=VALUE`);
    meta[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  const listen = values.listen ?? env.HOUSTON_LISTEN ?? "127.0.0.1:9631";
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new AgentConfigError(`--listen ${JSON.stringify(listen)}: expected HOST:PORT`);
  const host = m[1] ?? "127.0.0.1";
  const timeout = Number(values["start-timeout"] ?? "90");
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new AgentConfigError("--start-timeout must be a positive number of seconds");
  const maxMib = Number(values["max-archive-size"] ?? "64");
  if (!Number.isSafeInteger(maxMib) || maxMib < 1)
    throw new AgentConfigError("--max-archive-size must be a whole number of MiB");
  const graceText = values["scheduler-grace"] ?? env.HOUSTON_SCHEDULER_GRACE ?? "30";
  const grace = /^\d+(\.\d+)?$/.test(graceText) ? Number(graceText) : NaN;
  if (!(grace >= 1 && grace <= 86_400))
    throw new AgentConfigError(`--scheduler-grace ${JSON.stringify(graceText)}: expected seconds from 1 to 86400`);
  const fleet = values.fleet ?? env.HOUSTON_FLEET ?? "unix:///var/run/fleet.sock";
  if (!/^(https?:\/\/[^/\s]+\/?|unix:\/\/\/\S+)$/.test(fleet))
    throw new AgentConfigError(`--fleet ${JSON.stringify(fleet)}: expected unix:///path or http(s)://host:port`);
  const localSocket = values["local-socket"] ?? env.HOUSTON_LOCAL_SOCKET ?? "/run/houston/agent.sock";
  if (localSocket !== "" && !localSocket.startsWith("/"))
    throw new AgentConfigError(`--local-socket ${JSON.stringify(localSocket)}: expected an absolute path (or "")`);
  const environment = values.environment ?? (env.HOUSTON_ENVIRONMENT || undefined) ?? null;
  if (environment === "") throw new AgentConfigError("--environment: expected an environment name");
  const cluster = values.cluster ?? env.HOUSTON_CLUSTER ?? "";
  if (!CLUSTER_RE.test(cluster))
    throw new AgentConfigError(
      `--cluster ${JSON.stringify(cluster)}: expected up to 63 letters, digits, '.', '_', '-'`,
    );
  return {
    environment,
    cluster,
    fleet,
    localSocket,
    scheduler: values["no-scheduler"] !== true,
    schedulerGraceMs: grace * 1000,
    maxArchiveBytes: maxMib * 1048576,
    node: values.node ?? env.HOUSTON_NODE ?? undefined,
    consulAddr: values.consul ?? env.CONSUL_HTTP_ADDR ?? undefined,
    consulToken: values.token ?? env.CONSUL_HTTP_TOKEN ?? undefined,
    prefix: values.prefix ?? env.HOUSTON_PREFIX ?? DEFAULT_PREFIX,
    root: values.root ?? env.HOUSTON_ROOT ?? "/",
    unitDir: values["unit-dir"] ?? env.HOUSTON_UNIT_DIR ?? "/etc/systemd/system",
    stateDir: values["state-dir"] ?? env.HOUSTON_STATE_DIR ?? "/var/lib/houston",
    dbusAddress: values.dbus ?? env.DBUS_SYSTEM_BUS_ADDRESS ?? undefined,
    listen: { host, port: Number(m[2]), checkHost: host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host },
    meta,
    journal: !values["no-journal"],
    startTimeoutMs: timeout * 1000,
    tls: {
      ...tlsFromEnv(env),
      ...(values["ca-file"] ? { caFile: values["ca-file"] } : {}),
      ...(values["client-cert"] ? { certFile: values["client-cert"] } : {}),
      ...(values["client-key"] ? { keyFile: values["client-key"] } : {}),
      ...(values["tls-server-name"] ? { serverName: values["tls-server-name"] } : {}),
    },
    insecureToken: values["insecure-token"] === true,
    trust: [...(env.HOUSTON_TRUST ? env.HOUSTON_TRUST.split(",").filter(Boolean) : []), ...(values.trust ?? [])],
  };
}

export class UsageRequested extends Error {}
export class VersionRequested extends Error {}
