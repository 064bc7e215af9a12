/**
 * What every command needs: the config dir, environment, Consul client and KV layout,
 * resolved from flags, the manifest and Consul's own environment variables.
 * Consul address: --consul, else the manifest's environments.<env>.consul, else
 * $CONSUL_HTTP_ADDR, else http://127.0.0.1:8500.
 */
import { resolve } from "node:path";
import { Consul } from "../shared/consul.js";
import { ConfigError, errorText } from "../shared/errors.js";
import { KvLayout } from "../shared/kv-layout.js";
import { SpecSigner } from "../shared/signing.js";
import { loadManifest, type Manifest } from "./config/manifest.js";

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
}

export interface Context {
  dir: string;
  consul: Consul;
  kv: KvLayout;
  /** signs every spec written, when a signing key is configured */
  signer: SpecSigner | null;
}

export function makeContext(opts: GlobalOptions, manifest?: Manifest): Context {
  const fromManifest = opts.environment ? manifest?.environments[opts.environment]?.consul : undefined;
  const addr = opts.consul ?? fromManifest ?? process.env.CONSUL_HTTP_ADDR ?? undefined;
  return { dir: resolve(opts.config), consul: new Consul({ addr, token: opts.token }), kv: new KvLayout(opts.prefix), signer: signerFor(opts) };
}

function signerFor(opts: GlobalOptions): SpecSigner | null {
  const path = opts.signingKey ?? process.env.HOUSTON_SIGNING_KEY;
  if (path === undefined || path === "") return null;
  try {
    return SpecSigner.fromFile(path);
  } catch (err) {
    throw new ConfigError(opts.signingKey ? "--signing-key" : "$HOUSTON_SIGNING_KEY", errorText(err));
  }
}

export function loadManifestFor(opts: GlobalOptions): Manifest {
  return loadManifest(resolve(opts.config));
}
