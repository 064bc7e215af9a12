import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthProbe, httpGetStatus } from "../../agent/probe.js";

/** A fake clock: every GET costs `cost` ms, every wait what it asks for. */
function fakeClock(answers: (number | null)[], cost = 10) {
  let t = 0;
  const asked: number[] = [];
  const get = (_url: string, timeoutMs: number): Promise<number | null> => {
    asked.push(timeoutMs);
    t += cost;
    return Promise.resolve(answers.length > 1 ? answers.shift()! : answers[0]!);
  };
  const sleep = (ms: number): Promise<void> => {
    t += ms;
    return Promise.resolve();
  };
  return { io: { get, now: () => t, sleep }, asked };
}

describe("HealthProbe (the agent's first look at a service's check)", () => {
  const cases: { title: string; answers: (number | null)[]; passes: boolean }[] = [
    { title: "2xx passes", answers: [200], passes: true },
    { title: "204 passes", answers: [204], passes: true },
    { title: "refused, then 200: passes once the service answers", answers: [null, null, 200], passes: true },
    { title: "503 while warming up, then 200", answers: [503, 200], passes: true },
    { title: "a redirect is not a pass", answers: [302], passes: false },
    { title: "429 is Consul's warning, not a pass", answers: [429], passes: false },
    { title: "never answering is not a pass", answers: [null], passes: false },
  ];
  for (const c of cases)
    it(c.title, async () => {
      const clock = fakeClock([...c.answers]);
      const probe = new HealthProbe(1000, clock.io);
      expect(await probe.passes("http://127.0.0.1:1/", 2000)).toBe(c.passes);
      // the first ask gets the check's timeout; no later one outlives the budget
      expect(clock.asked[0]).toBe(2000);
      expect(Math.max(...clock.asked.slice(1))).toBeLessThanOrEqual(1000);
    });

  it("one budget for the whole pass: once spent, later services are not asked", async () => {
    const clock = fakeClock([null], 600);
    const probe = new HealthProbe(1000, clock.io);
    expect(await probe.passes("http://127.0.0.1:1/a", 2000)).toBe(false);
    const before = clock.asked.length;
    expect(await probe.passes("http://127.0.0.1:1/b", 2000)).toBe(false);
    expect(clock.asked.length).toBe(before);
  });
});

describe("httpGetStatus (real HTTP on loopback)", () => {
  let server: Server;
  let base = "";
  beforeAll(async () => {
    server = createServer((req, res) => {
      const code = Number(req.url?.slice(1)) || 200;
      res.writeHead(code, code === 302 ? { Location: "/200" } : {}).end("body that is not read");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("answers with the status code, without following redirects", async () => {
    expect(await httpGetStatus(`${base}/200`, 30_000)).toBe(200);
    expect(await httpGetStatus(`${base}/503`, 30_000)).toBe(503);
    expect(await httpGetStatus(`${base}/302`, 30_000)).toBe(302);
  });

  it("null when nothing listens, for https (not asked) and for a URL that is not one", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await httpGetStatus(`http://127.0.0.1:${port}/`, 30_000)).toBeNull();
    expect(await httpGetStatus(`${base.replace("http:", "https:")}/200`, 30_000)).toBeNull();
    expect(await httpGetStatus("not a url", 30_000)).toBeNull();
  });

  it("null when the service accepts but never answers (gives up at the timeout)", async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
    try {
      expect(await httpGetStatus(url, 50)).toBeNull();
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});
