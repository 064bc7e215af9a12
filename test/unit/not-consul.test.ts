/**
 * An address where something other than Consul answers (a web server's HTML page): the CLI says
 * which address answered what, and asks whether it is Consul; exit 3 (no Consul there), no stack
 * trace. It used to be exit 1, "Consul answered … with invalid JSON", without the address.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configDir, houston } from "../helpers/cli.js";

let server: ReturnType<typeof createServer>;
let addr = "";
beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html>\n  <body>It works!</body>\n</html>\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("a web server at the Consul address", () => {
  const dir = configDir({
    "manifest.yaml": "environments:\n  test: {}\nglobal-units: [beat:1]\n",
    "units/global/beat.service": "[Service]\nExecStart=/bin/sleep infinity\n",
  });
  it.each([["status"], ["history"], ["global"]])("%s names the address and asks whether it is Consul", async (cmd) => {
    const r = await houston(addr, dir, cmd);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`ERROR    The server at ${addr} answered `);
    expect(r.stderr).toContain(`with something that is not JSON ("<html> <body>It works!</body> </html>")`);
    expect(r.stderr).toContain("is it a Consul agent's HTTP API?");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
