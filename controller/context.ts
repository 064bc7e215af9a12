/**
 * What every command needs: the config dir, environment, Consul client and KV layout,
 * resolved from flags, the manifest and Consul's own environment variables.
 * Consul address: --consul, else $CONSUL_HTTP_ADDR, else the manifest's environments.<env>.consul,
 * else http://127.0.0.1:8500 (see consulAddress); the token: --token, else $CONSUL_HTTP_TOKEN, which
 * is never sent to an address only the manifest names (see consulToken).
 */
import { resolve } from "node:path";
import { Consul } from "../shared/consul.js";
import { isLoopback, parseConsulAddress, tlsFromEnv } from "../shared/consul-transport.js";
import { ConfigError, errorText } from "../shared/errors.js";
import { KvLayout } from "../shared/kv-layout.js";
import { CLUSTER_RE, SpecSigner } from "../shared/signing.js";
import { Fleet } from "../shared/fleet.js";
import { agentsScheduler } from "./scheduler/agents.js";
import { fleetScheduler } from "./scheduler/fleet.js";
import { releaseAdopted } from "./commands/adopt.js";
import type { Scheduler } from "./scheduler/scheduler.js";
import { loadManifest, type Manifest, type SchedulerName } from "./config/manifest.js";
import { consoleOutput } from "./output.js";

export interface GlobalOptions {
  config: string;
  environment?: string;
  consul?: string;
  token?: string;
  prefix: string;
  verbose: boolean;
  json: boolean;
  /** ed25519 private key (PEM) to sign specs with; default $HOUSTON_SIGNING_KEY */
  signingKey?: string;
  /** rollouts: take specs and history read back from KV as they are, though they do not verify */
  trustKvAsIs?: boolean;
  /** the cluster name bound into signatures (agents' --cluster); default $HOUSTON_CLUSTER, else "" */
  cluster?: string;
  /** allow sending the token over plain http to a non-loopback address */
  insecureToken?: boolean;
  caFile?: string;
  clientCert?: string;
  clientKey?: string;
  tlsServerName?: string;
  /** MiB, as given on the command line */
  maxArchiveSize?: string;
  /** `plan --scheduler`: agents or fleet, instead of the environment's */
  scheduler?: string;
}

export interface Context {
  dir: string;
  consul: Consul;
  kv: KvLayout;
  /** signs every spec and history record written, when a signing key is configured; what is
   * read back is then verified against it (controller/rollout/read-back.ts) */
  signer: SpecSigner | null;
  /** --trust-kv-as-is: what is read back is taken as it is, with a warning naming each key */
  trustKvAsIs: boolean;
  /** the largest file archive a deployment may carry */
  maxArchiveBytes: number;
  /** where units go, what hosts report, what the backend refuses (controller/scheduler/; manifest
   * `scheduler:`, `plan --scheduler`) */
  scheduler: Scheduler;
  /** the environment's fleet (manifest `fleet:`), for `nodes` and `adopt`; null: none */
  fleet: Fleet | null;
  /** where the scheduler was chosen (a flag, or manifest.yaml's key), for errors about it */
  schedulerSource: string;
}

export function makeContext(opts: GlobalOptions, manifest?: Manifest): Context {
  // `-e prdo status`: a typo is not the default Consul (nor $CONSUL_HTTP_ADDR's) in disguise
  if (manifest && opts.environment !== undefined && !Object.hasOwn(manifest.environments, opts.environment))
    throw new ConfigError(
      manifest.file,
      `environment ${JSON.stringify(opts.environment)} is not defined (known: ${Object.keys(manifest.environments).join(", ")})`,
    );
  const addr = consulAddress(opts, manifest, process.env);
  const token = consulToken(opts, addr, process.env);
  const tls = {
    ...tlsFromEnv(process.env),
    ...definedOnly({
      caFile: opts.caFile,
      certFile: opts.clientCert,
      keyFile: opts.clientKey,
      serverName: opts.tlsServerName,
    }),
  };
  let consul: Consul;
  try {
    const url = parseConsulAddress(addr.value);
    if (token && url.protocol === "http:" && !isLoopback(url) && !opts.insecureToken) {
      throw new ConfigError(
        addr.source,
        `refusing to send the Consul token over plain http to ${url.host}: use an https:// address (with CONSUL_CACERT) or pass --insecure-token`,
      );
    }
    // "" rather than undefined: the client would otherwise take $CONSUL_HTTP_TOKEN itself
    const notice = consoleOutput({ verbose: false });
    consul = new Consul({
      addr: addr.value,
      token: token ?? "",
      tls,
      onSlow: (what, waited, limit) =>
        notice.warn(
          `Consul at ${url.host} has not answered ${what} for ${Math.round(waited / 1000)}s (giving up at ${Math.round(limit / 1000)}s)`,
        ),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(addr.source, errorText(err));
  }
  const kv = new KvLayout(checkPrefix(opts.prefix));
  const envName = opts.environment;
  const envCfg =
    envName !== undefined && manifest && Object.hasOwn(manifest.environments, envName)
      ? manifest.environments[envName]
      : undefined;
  const fleetEndpoint = envCfg?.fleet ?? null;
  if (opts.scheduler !== undefined && opts.scheduler !== "agents" && opts.scheduler !== "fleet")
    throw new ConfigError("--scheduler", `${JSON.stringify(opts.scheduler)} is not a scheduler (agents or fleet)`);
  const schedulerName: SchedulerName = opts.scheduler ?? envCfg?.scheduler ?? "agents";
  const envKey = (key: string) => `${manifest?.file ?? "manifest.yaml"} environments.${envName ?? "?"}.${key}`;
  const schedulerSource =
    opts.scheduler !== undefined
      ? "--scheduler"
      : envCfg?.fleetByEndpoint
        ? envKey("fleet")
        : envCfg
          ? envKey("scheduler")
          : "the default scheduler (agents)";
  return {
    schedulerSource,
    fleet: fleetEndpoint
      ? new Fleet(fleetEndpoint, (what, waited, limit) =>
          consoleOutput({ verbose: false }).warn(
            `fleet at ${fleetEndpoint} has not answered ${what} for ${Math.round(waited / 1000)}s (giving up at ${Math.round(limit / 1000)}s)`,
          ),
        )
      : null,
    dir: resolve(opts.config),
    consul,
    kv,
    scheduler:
      schedulerName === "fleet"
        ? fleetScheduler(
            consul,
            kv,
            (stack) => releaseAdopted(consul, kv, stack),
            opts.scheduler === undefined && envCfg?.fleetByEndpoint && fleetEndpoint
              ? `scheduling through fleetd at ${fleetEndpoint}, as the config's fleet: endpoint says; \`scheduler: agents\` to use Houston's own`
              : null,
          )
        : agentsScheduler(consul, kv),
    signer: signerFor(opts, kv),
    trustKvAsIs: opts.trustKvAsIs === true,
    maxArchiveBytes: archiveLimit(opts.maxArchiveSize),
  };
}

export interface ConsulAddress {
  value: string;
  /** what named it, for errors */
  source: string;
  /** set when only the manifest named it: its key */
  manifestKey?: string;
}

/**
 * The token, and the rule for where it may go:
 *  - a token given with --token goes to the command's address, whichever source named it: whoever
 *    typed both chose where it goes;
 *  - a token from the environment ($CONSUL_HTTP_TOKEN) goes only to an address the environment or
 *    the command line chose: $CONSUL_HTTP_ADDR, --consul or the default (loopback). An address
 *    that only the manifest names (a pull request away) does not get it: that is refused before
 *    anything is sent, saying how to confirm the address. A manifest address equal to
 *    $CONSUL_HTTP_ADDR is used as the environment's (consulAddress refuses one that differs).
 */
export function consulToken(
  opts: Pick<GlobalOptions, "token">,
  addr: ConsulAddress,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (opts.token !== undefined) return checkToken("--token", opts.token);
  const ambient = env.CONSUL_HTTP_TOKEN ? checkToken("$CONSUL_HTTP_TOKEN", env.CONSUL_HTTP_TOKEN) : undefined;
  if (ambient === undefined || addr.manifestKey === undefined) return ambient;
  throw new ConfigError(
    addr.source,
    `the token from $CONSUL_HTTP_TOKEN is not sent to ${addr.value}, which only the manifest names (${addr.manifestKey}): pass --consul ${addr.value} (or set CONSUL_HTTP_ADDR) to send it there, or give a token with --token`,
  );
}

/**
 * A token goes into an HTTP header: a line break or another control character in it (a pasted token
 * file, `--token $'abc\nX-Injected: 1'`) is a usage error naming where it came from and the
 * character, before anything is sent.
 */
export function checkToken(source: string, token: string): string {
  const bad = /[\u0000-\u0020\u007f-\u00a0]/.exec(token);
  if (bad === null) return token;
  const c = bad[0];
  const named: Record<string, string> = {
    "\n": "a line break (\\n)",
    "\r": "a carriage return (\\r)",
    "\t": "a tab",
    " ": "a space",
  };
  const what = named[c] ?? `the control character U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  throw new ConfigError(
    source,
    `the Consul token has ${what} at character ${bad.index + 1}: a token is one word (was a file pasted with its line break?)`,
  );
}

/**
 * Where the token goes: --consul, else $CONSUL_HTTP_ADDR, else the manifest's
 * environments.ENV.consul, else http://127.0.0.1:8500. A manifest (a pull request away) that
 * names another address than the environment does is refused unless --consul settles it.
 */
export function consulAddress(
  opts: Pick<GlobalOptions, "consul" | "environment">,
  manifest: Manifest | undefined,
  env: NodeJS.ProcessEnv,
): ConsulAddress {
  if (opts.consul !== undefined) return { value: opts.consul, source: "--consul" };
  const fromEnv = env.CONSUL_HTTP_ADDR || undefined;
  const envName = opts.environment;
  const fromManifest =
    envName !== undefined && manifest && Object.hasOwn(manifest.environments, envName)
      ? (manifest.environments[envName]?.consul ?? undefined)
      : undefined;
  if (fromEnv !== undefined && fromManifest !== undefined && sameAddress(fromEnv, fromManifest) === false) {
    throw new ConfigError(
      manifest?.file ?? "manifest.yaml",
      `environments.${envName}.consul is ${fromManifest} but CONSUL_HTTP_ADDR is ${fromEnv}; pass --consul to say which one gets the token`,
    );
  }
  if (fromEnv !== undefined) return { value: fromEnv, source: "$CONSUL_HTTP_ADDR" };
  if (fromManifest !== undefined)
    return {
      value: fromManifest,
      source: `${manifest?.file ?? "manifest.yaml"} (environments.${envName}.consul)`,
      manifestKey: `environments.${envName}.consul`,
    };
  return { value: "http://127.0.0.1:8500", source: "the default Consul address" };
}

function sameAddress(a: string, b: string): boolean {
  try {
    const x = parseConsulAddress(a);
    const y = parseConsulAddress(b);
    return x.protocol === y.protocol && x.host === y.host;
  } catch {
    return a === b;
  }
}

/** The KV prefix: path segments of letters, digits, '.', '_', '-', ending in '/'. */
function checkPrefix(prefix: string): string {
  const p = prefix.endsWith("/") ? prefix : `${prefix}/`;
  if (!/^([A-Za-z0-9_][A-Za-z0-9_.-]*\/)+$/.test(p) || p.split("/").some((s) => s === "." || s === "..")) {
    throw new ConfigError(
      "--prefix",
      `${JSON.stringify(prefix)} is not a KV prefix like houston/ (segments of letters, digits, '.', '_', '-')`,
    );
  }
  return p;
}

export const DEFAULT_MAX_ARCHIVE_MIB = 64;

function archiveLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_MAX_ARCHIVE_MIB * 1048576;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 4096)
    throw new ConfigError(
      "--max-archive-size",
      `expected a whole number of MiB from 1 to 4096, got ${JSON.stringify(value)}`,
    );
  return n * 1048576;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The signer, for this prefix and cluster name (bound into every signature); null without a key. */
function signerFor(opts: GlobalOptions, kv: KvLayout): SpecSigner | null {
  const path = opts.signingKey ?? process.env.HOUSTON_SIGNING_KEY;
  if (path === undefined || path === "") return null;
  const cluster = opts.cluster ?? process.env.HOUSTON_CLUSTER ?? "";
  if (!CLUSTER_RE.test(cluster))
    throw new ConfigError(
      opts.cluster !== undefined ? "--cluster" : "$HOUSTON_CLUSTER",
      `${JSON.stringify(cluster)} is not a cluster name (up to 63 letters, digits, '.', '_', '-')`,
    );
  try {
    return SpecSigner.fromFile(path, { prefix: kv.prefix, cluster });
  } catch (err) {
    throw new ConfigError(opts.signingKey ? "--signing-key" : "$HOUSTON_SIGNING_KEY", errorText(err));
  }
}

export function loadManifestFor(opts: GlobalOptions): Manifest {
  return loadManifest(resolve(opts.config));
}
