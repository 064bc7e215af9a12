/**
 * A Consul address that is an IPv6 literal (`http://[::1]:8500`) is reached, with its brackets in
 * the Host header; it used to fail as "--consul: Invalid URL" before anything was sent.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { ConsulTransport, parseConsulAddress } from "../../shared/consul-transport.js";

describe("an IPv6 Consul address", () => {
  it("http://[::1]:PORT is asked, with Host: [::1]:PORT", async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.url} ${req.headers.host}`);
      res.writeHead(200, { "content-type": "application/json", "x-consul-index": "7" });
      res.end("[]");
    });
    await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
    const port = (server.address() as AddressInfo).port;
    const transport = new ConsulTransport(parseConsulAddress(`http://[::1]:${port}`), {});
    try {
      const r = await transport.send({ method: "GET", path: "/kv/x?keys", headers: {}, timeoutMs: 5000 });
      expect(r.status).toBe(200);
      expect(r.index).toBe(7);
      expect(seen).toEqual([`/v1/kv/x?keys [::1]:${port}`]);
      expect(transport.addr).toBe(`http://[::1]:${port}`);
    } finally {
      transport.close();
      server.close();
    }
  });
});
