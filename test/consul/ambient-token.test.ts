/**
 * Where a token from the environment may go, through the built CLI: a change to manifest.yaml
 * alone must not send $CONSUL_HTTP_TOKEN to the address it names. A server on loopback stands in
 * for the address a pull request put in the manifest, and records every token it is sent.
 */
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { configDir, type CliResult } from "../helpers/cli.js";
import { ROOT } from "../harness/paths.js";

let server: Server;
let addr: string;
let seen: { token: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const t = req.headers["x-consul-token"];
    seen.push({ token: typeof t === "string" ? t : undefined });
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen = [];
});

function run(args: string[], env: Record<string, string>): Promise<CliResult> {
  const dir = configDir({
    "manifest.yaml": `environments:\n  test: {consul: '${addr}'}\nshared-stacks:\n  web: [app:1]\n`,
    "units/shared/app.service": "[Service]\nExecStart=/bin/true\n",
  });
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CONSUL_")));
  const child = spawn(process.execPath, [join(ROOT, "dist", "houston.js"), "-c", dir, "-e", "test", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...clean, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr })));
}

describe("a token from the environment goes only where the environment or the command line says", () => {
  it("is not sent to an address only the manifest names: refused before anything is sent, saying what to do", async () => {
    for (const args of [["plan", "standalone", "web"], ["standalone", "web"], ["status"]]) {
      const r = await run(args, { CONSUL_HTTP_TOKEN: "ambient-secret" });
      expect(seen, args.join(" ")).toEqual([]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `the token from $CONSUL_HTTP_TOKEN is not sent to ${addr}, which only the manifest names (environments.test.consul)`,
      );
      expect(r.stderr).toMatch(
        /pass --consul .* \(or set CONSUL_HTTP_ADDR\) to send it there, or give a token with --token/,
      );
      expect(r.stderr).not.toMatch(/ambient-secret|\n\s+at /);
    }
  });

  it("goes to the manifest's address when CONSUL_HTTP_ADDR or --consul names the same one", async () => {
    await run(["plan", "standalone", "web"], { CONSUL_HTTP_TOKEN: "ambient-secret", CONSUL_HTTP_ADDR: addr });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.token === "ambient-secret")).toBe(true);
    seen = [];
    await run(["--consul", addr, "plan", "standalone", "web"], { CONSUL_HTTP_TOKEN: "ambient-secret" });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.token === "ambient-secret")).toBe(true);
  });

  it("a token given with --token goes to the command's address, the manifest's included", async () => {
    await run(["--token", "flag-secret", "plan", "standalone", "web"], { CONSUL_HTTP_TOKEN: "ambient-secret" });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.token === "flag-secret")).toBe(true);
  });

  it("without any token the manifest's address is used as before", async () => {
    await run(["plan", "standalone", "web"], {});
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.token === undefined)).toBe(true);
  });
});
