/**
 * TLS for the machine's Consul server: a CA, a server and a client certificate made by `consul tls`
 * in a directory beside the server's data (kept across restarts); HTTPS only, client certificates
 * verified (RPC stays plain).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CONSUL_BIN } from "./paths.js";

const run = promisify(execFile);

/** What a client needs: the CA, its certificate and key. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** The certificates for a server whose data is in `dataDir` (made once), and its arguments for HTTPS on `port`. */
export async function consulTls(
  dataDir: string,
  port: number,
): Promise<{ dir: string; files: TlsFiles; args: string[] }> {
  const dir = join(dataDir, "..", `${dataDir.split("/").at(-1) ?? "consul"}-tls`);
  if (!existsSync(join(dir, "consul-agent-ca.pem"))) {
    mkdirSync(dir, { recursive: true });
    await run(CONSUL_BIN, ["tls", "ca", "create"], { cwd: dir });
    await run(CONSUL_BIN, ["tls", "cert", "create", "-server", "-dc", "dc1"], { cwd: dir });
    await run(CONSUL_BIN, ["tls", "cert", "create", "-client", "-dc", "dc1"], { cwd: dir });
  }
  const files = {
    ca: join(dir, "consul-agent-ca.pem"),
    cert: join(dir, "dc1-client-consul-0.pem"),
    key: join(dir, "dc1-client-consul-0-key.pem"),
  };
  const args = [
    "-hcl",
    `ports { http = -1 https = ${port} }`,
    "-hcl",
    `ca_file = "${join(dir, "consul-agent-ca.pem")}"`,
    "-hcl",
    `cert_file = "${join(dir, "dc1-server-consul-0.pem")}"`,
    "-hcl",
    `key_file = "${join(dir, "dc1-server-consul-0-key.pem")}"`,
    "-hcl",
    "verify_incoming_https = true",
  ];
  return { dir, files, args };
}
