/**
 * TLS to Consul: a real Consul server that serves its HTTP API over HTTPS only and verifies client
 * certificates (CA and certificates made by `consul tls` at test time), a real host with an agent.
 * The controller deploys and reads status over TLS; a wrong CA or a missing client certificate is
 * a clear error with exit status 3.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFleet } from "../harness/local-fleet.js";
import { CONSUL_BIN } from "../harness/paths.js";
import { configDir, houston, startCli } from "../helpers/cli.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({ hosts: [{ name: "tls1", meta: { role: "web" } }], tls: true });
});
afterAll(async () => fleet?.stop());

const config = () =>
  configDir({
    "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  secure: [app:1]\n",
    "units/shared/app.service": "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Houston]\nMinHealthy=0\n", // not about confirmation
  });
const tlsFlags = () => [
  "--ca-file",
  fleet.tlsFiles!.ca,
  "--client-cert",
  fleet.tlsFiles!.cert,
  "--client-key",
  fleet.tlsFiles!.key,
];

describe("Consul over TLS with client certificates", () => {
  it("serves HTTPS only", () => {
    expect(fleet.consulAddr).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("deploy and status work with the right CA and client certificate (flags)", async () => {
    const dir = config();
    const d = await houston(fleet.consulAddr, dir, ...tlsFlags(), "standalone", "secure");
    expect(d.code, d.stderr).toBe(0);
    expect(await fleet.unitState("tls1", "secure-app@1.service")).toBe("active");
    const s = await houston(fleet.consulAddr, dir, ...tlsFlags(), "status", "secure");
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/tls1.*secure-app@1.service.*active/);
  });

  it("the same from the Consul CLI's environment variables", async () => {
    const env = {
      ...process.env,
      CONSUL_CACERT: fleet.tlsFiles!.ca,
      CONSUL_CLIENT_CERT: fleet.tlsFiles!.cert,
      CONSUL_CLIENT_KEY: fleet.tlsFiles!.key,
    };
    const r = await startCli(fleet.consulAddr, config(), ["nodes"], env).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("tls1");
  });

  it("no client certificate: exit 3, saying a client certificate is required", async () => {
    const r = await houston(fleet.consulAddr, config(), "--ca-file", fleet.tlsFiles!.ca, "status");
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/requires a client certificate/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("a CA that did not sign Consul's certificate: exit 3, naming the CA setting", async () => {
    const other = mkdtempSync(join(tmpdir(), "houston-other-ca-"));
    execFileSync(CONSUL_BIN, ["tls", "ca", "create"], { cwd: other });
    const r = await houston(
      fleet.consulAddr,
      config(),
      "--ca-file",
      join(other, "consul-agent-ca.pem"),
      "--client-cert",
      fleet.tlsFiles!.cert,
      "--client-key",
      fleet.tlsFiles!.key,
      "status",
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not signed by a trusted CA \(set CONSUL_CACERT or --ca-file/);
  });

  it("plain http to the HTTPS port: exit 3 with a hint", async () => {
    const r = await houston(fleet.consulAddr.replace("https:", "http:"), config(), "status");
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/serves https, not http: use https:\/\//);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("a missing CA file is a usage error naming it", async () => {
    const r = await houston(fleet.consulAddr, config(), "--ca-file", "/nonexistent/ca.pem", "status");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CA certificate \/nonexistent\/ca.pem/);
  });
});
