/**
 * An address where something other than Consul answers (a web server's page, 200 or 404, or a
 * body that is not JSON): the CLI says which address answered what, and asks whether it is Consul;
 * exit 3 (no Consul there), no stack trace. It used to be exit 1 ("Consul answered … with invalid
 * JSON", or the whole page) without the address, and `history` took a 404 page for no history.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configDir, houston } from "../helpers/cli.js";

const servers: ReturnType<typeof createServer>[] = [];
let addr = "";
let pages = "";
let plain = "";
const listen = async (handler: Parameters<typeof createServer>[1]): Promise<string> => {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
beforeAll(async () => {
  // answers 200 with a body that is not JSON (no content type saying so)
  addr = await listen((_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.end("<html>\n  <body>It works!</body>\n</html>\n");
  });
  // a web server's 404 page, as python3 -m http.server answers
  pages = await listen((_req, res) => {
    res.writeHead(404, { "content-type": "text/html;charset=utf-8" });
    res.end("<!DOCTYPE HTML>\n<html>\n<body><h1>Error response</h1></body>\n</html>\n");
  });
  // a Go server or a proxy: a plain-text 404 for every path (Consul's KV 404 carries X-Consul-Index)
  plain = await listen((_req, res) => {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("404 page not found\n");
  });
});
afterAll(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));

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
  it("plan renders without Consul and says what answered instead of calling Consul unreachable", async () => {
    const r = await houston(addr, dir, "plan", "global");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `No Consul to compare with, showing the rendering only: The server at ${addr} answered `,
    );
    expect(r.stderr).not.toContain("Consul unreachable");
  });
});

describe("a web server's 404 page at the Consul address", () => {
  const dir = configDir({
    "manifest.yaml": "environments:\n  test: {}\nglobal-units: [beat:1]\n",
    "units/global/beat.service": "[Service]\nExecStart=/bin/sleep infinity\n",
  });
  it.each([["status"], ["history"], ["nodes"], ["global"]])("%s says an HTML page answered, exit 3", async (cmd) => {
    const r = await houston(pages, dir, cmd);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      new RegExp(
        `^ERROR {4}The server at ${pages.replace(/[.]/g, "\\.")} answered \\S+ /v1/\\S+ with an HTML page \\(HTTP \\d+\\): is it a Consul agent's HTTP API\\?\\n$`,
      ),
    );
    expect(r.stdout).not.toContain("no deployments recorded");
  });
});

describe("a plain-text 404 for every path at the Consul address", () => {
  const dir = configDir({
    "manifest.yaml": "environments:\n  test: {}\nglobal-units: [beat:1]\n",
    "units/global/beat.service": "[Service]\nExecStart=/bin/sleep infinity\n",
  });
  it.each([["status"], ["history"], ["nodes"], ["global"], ["remove", "web", "-y"]])(
    "%s is not taken for an empty Consul: exit 3, naming the address",
    async (...cmd) => {
      const r = await houston(plain, dir, ...cmd);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`ERROR    The server at ${plain} answered `);
      expect(r.stderr).toContain("with 404 (404 page not found): is it a Consul agent's HTTP API?");
      expect(r.stdout).not.toMatch(/no deployments recorded|no stacks deployed/);
    },
  );
});
