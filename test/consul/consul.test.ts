import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Consul } from "../../shared/consul.js";
import { ConsulError, ConsulUnreachableError, ValueTooLargeError } from "../../shared/errors.js";
import { freePorts, startConsul, type TestConsul } from "../harness/consul-dev.js";

let consul: TestConsul;
let c: Consul;
beforeAll(async () => {
  consul = await startConsul();
  c = consul.client;
});
afterAll(async () => consul?.stop());

describe("KV", () => {
  it("round-trips binary values byte for byte", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(await c.kvPut("t/bin", bytes)).toBe(true);
    const got = await c.kvGet("t/bin");
    expect(got?.value.equals(bytes)).toBe(true);
  });

  it("returns null for a missing key and [] for an empty prefix (Consul answers 404)", async () => {
    expect(await c.kvGet("t/missing")).toBeNull();
    expect(await c.kvList("nothing-here/")).toEqual([]);
    expect(await c.kvKeys("nothing-here/")).toEqual([]);
  });

  it("CAS returns a real boolean: 0 creates only if absent, stale index refused", async () => {
    expect(await c.kvPut("t/cas", "one", { cas: 0 })).toBe(true);
    expect(await c.kvPut("t/cas", "two", { cas: 0 })).toBe(false);
    const e = await c.kvGet("t/cas");
    expect(await c.kvPut("t/cas", "three", { cas: e!.modifyIndex })).toBe(true);
    expect(await c.kvPut("t/cas", "four", { cas: e!.modifyIndex })).toBe(false);
    expect((await c.kvGet("t/cas"))?.value.toString()).toBe("three");
  });

  it("prefix delete needs a trailing '/' and does not touch siblings sharing the string prefix", async () => {
    await c.kvPut("p/a/b/1", "x");
    await c.kvPut("p/a/bx", "y");
    await expect(c.kvDeletePrefix("p/a/b")).rejects.toThrow(/must end in '\/'/);
    await c.kvDeletePrefix("p/a/b/");
    expect(await c.kvKeys("p/")).toEqual(["p/a/bx"]);
  });

  it("refuses keys Consul would redirect", async () => {
    await expect(c.kvPut("a//b", "x")).rejects.toThrow(ConsulError);
    await expect(c.kvGet("a/../b")).rejects.toThrow(/invalid KV key/);
  });

  it("a 600 KiB value is refused with a clear error naming the key", async () => {
    const err = await c.kvPut("t/big", Buffer.alloc(600 * 1024, 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValueTooLargeError);
    expect(String((err as Error).message)).toContain("t/big");
    expect(await c.kvGet("t/big")).toBeNull();
  });

  it("transactions apply all or nothing and report which op failed", async () => {
    await c.kvPut("tx/a", "1");
    const a = await c.kvGet("tx/a");
    const ok = await c.txn([
      { verb: "cas", key: "tx/a", value: "2", index: a!.modifyIndex },
      { verb: "set", key: "tx/b", value: "b" },
    ]);
    expect(ok.ok).toBe(true);
    const bad = await c.txn([
      { verb: "set", key: "tx/c", value: "c" },
      { verb: "cas", key: "tx/a", value: "3", index: a!.modifyIndex },
    ]);
    expect(bad.ok).toBe(false);
    expect(bad.errors[0]).toContain("tx/a");
    expect(await c.kvGet("tx/c")).toBeNull();
    await expect(
      c.txn(Array.from({ length: 65 }, (_, i) => ({ verb: "set" as const, key: `tx/n${i}`, value: "x" }))),
    ).rejects.toThrow(/64/);
  });
});

describe("sessions and locks", () => {
  it("rejects TTLs Consul would refuse, and a held lock cannot be acquired twice", async () => {
    await expect(c.sessionCreate({ name: "x", ttlSeconds: 5 })).rejects.toThrow(/10s/);
    const s1 = await c.sessionCreate({ name: "one", ttlSeconds: 10 });
    const s2 = await c.sessionCreate({ name: "two", ttlSeconds: 10 });
    expect(await c.kvPut("locks/x", "one", { acquire: s1 })).toBe(true);
    expect(await c.kvPut("locks/x", "two", { acquire: s2 })).toBe(false);
    expect((await c.kvGet("locks/x"))?.session).toBe(s1);
    expect(await c.sessionRenew(s1)).toBe(true);
    await c.sessionDestroy(s1);
    expect(await c.sessionRenew(s1)).toBe(false);
    expect((await c.kvGet("locks/x"))?.session).toBeUndefined();
    expect(await c.kvPut("locks/x", "two", { acquire: s2 })).toBe(true);
  });
});

describe("catalog, health, agent", () => {
  it("reads its own node and registers a service with a check", async () => {
    const self = await c.agentSelf();
    expect(self.nodeName).toMatch(/^consul-dev-/);
    await c.agentServiceRegister({
      ID: "web-1",
      Name: "web",
      Tags: ["version:1"],
      Port: 1,
      Check: { TCP: "127.0.0.1:1", Interval: "10s", Status: "passing" },
    });
    const { entries } = await c.healthService("web", { tag: "version:1" });
    expect(entries.map((e) => e.Service.ID)).toEqual(["web-1"]);
    await c.agentServiceDeregister("web-1");
    expect((await c.healthService("web")).entries).toEqual([]);
  });

  it("says clearly when Consul is unreachable", async () => {
    const port = await freePorts(1);
    const dead = new Consul({ addr: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    const err = await dead.kvGet("x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsulUnreachableError);
    const message = (err as Error).message;
    expect(message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} is unreachable.*ECONNREFUSED`));
    expect(message).toContain("connection refused: nothing listens there");
    expect(message.match(/ECONNREFUSED/g), "the code once, not once per wrapper").toHaveLength(1);
    expect(message).not.toContain("consul: ");
  });
});

describe("blocking watch", () => {
  it("yields the current state, then each change, without busy looping; ends on abort", async () => {
    const ac = new AbortController();
    const seen: string[][] = [];
    let requests = 0;
    const counting = new (class extends Consul {
      override request(...args: Parameters<Consul["request"]>) {
        requests++;
        return super.request(...args);
      }
    })({ addr: consul.addr });
    const done = (async () => {
      for await (const { entries } of counting.watchPrefix("w/", { signal: ac.signal, wait: "2s" })) {
        seen.push(entries.map((e) => `${e.key}=${e.value.toString()}`));
        if (seen.length === 3) ac.abort();
      }
    })();
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toEqual([]);
    await c.kvPut("w/a", "1");
    await waitFor(() => seen.length === 2);
    expect(seen[1]).toEqual(["w/a=1"]);
    const before = requests;
    await new Promise((r) => setTimeout(r, 2500)); // one wait period: at most one or two requests
    expect(requests - before).toBeLessThanOrEqual(2);
    await c.kvPut("w/b", "2");
    await done;
    expect(seen[2]).toEqual(["w/a=1", "w/b=2"]);
  });

  it("recovers when Consul restarts and its index goes backwards", async () => {
    const other = await startConsul();
    try {
      const oc = other.client;
      for (let i = 0; i < 30; i++) await oc.kvPut(`noise/${i}`, "x"); // push the index up
      await oc.kvPut("r/k", "before");
      const ac = new AbortController();
      const seen: string[] = [];
      const errors: unknown[] = [];
      const done = (async () => {
        for await (const { entries } of oc.watchPrefix("r/", {
          signal: ac.signal,
          wait: "2s",
          onError: (e) => errors.push(e),
        })) {
          seen.push(entries.map((e) => e.value.toString()).join(","));
          if (seen.at(-1) === "after") ac.abort();
        }
      })();
      await waitFor(() => seen.length === 1);
      await other.restart(); // empty KV, index starts over near 1
      await oc.kvPut("r/k", "after");
      await done;
      expect(seen[0]).toBe("before");
      expect(seen.at(-1)).toBe("after");
      expect(errors.length).toBeGreaterThan(0); // it noticed the outage and retried
    } finally {
      await other.stop();
    }
  });
});

async function waitFor(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
