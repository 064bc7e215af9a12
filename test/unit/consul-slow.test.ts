/**
 * A Consul that accepts the connection and never answers is said while the CLI waits (every 10 s
 * in the CLI; faster here), not 30 s of silence; a blocking query, which is meant to wait, is not.
 */
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { Consul } from "../../shared/consul.js";

describe("a Consul that says nothing", () => {
  it("a plain request is said while it waits, then times out; a blocking query is not said", async () => {
    const held: Socket[] = [];
    const server = createServer((c) => void held.push(c));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const said: string[] = [];
    const consul = new Consul({
      addr: `http://127.0.0.1:${port}`,
      token: "",
      timeoutMs: 700,
      slowNoticeMs: 200,
      onSlow: (what, waited, limit) => said.push(`${what} ${waited >= 200 ? "≥200" : waited} ${limit}`),
    });
    try {
      await expect(consul.kvGet("houston/x")).rejects.toThrow(/timed out/);
      expect(said.length).toBeGreaterThanOrEqual(2);
      expect(said[0]).toBe("GET /v1/kv/houston/x ≥200 700");
      said.length = 0;
      const ac = new AbortController();
      const blocking = consul.kvListAt("houston/", 5, { wait: "1s", signal: ac.signal }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
      ac.abort();
      await blocking;
      expect(said).toEqual([]);
    } finally {
      consul.close();
      for (const c of held) c.destroy();
      server.close();
    }
  });
});
