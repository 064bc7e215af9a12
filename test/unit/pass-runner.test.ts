import { describe, expect, it } from "vitest";
import { PassRunner, type Timers } from "../../agent/pass-runner.js";

/** timers that fire only when the test says so */
class ManualTimers implements Timers {
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  private id = 0;
  set(fn: () => void, ms: number): unknown {
    this.pending.set(++this.id, { fn, ms });
    return this.id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.ms);
  }
  fireAll(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const t of due) t.fn();
  }
}

/** a backoff whose delays count up: 1, 2, 3, … until reset */
class CountingBackoff {
  attempt = 0;
  next(): number {
    return ++this.attempt;
  }
  reset(): void {
    this.attempt = 0;
  }
}

/** passes the test finishes one by one, each with the outcome it is given */
function harness() {
  const timers = new ManualTimers();
  const backoff = new CountingBackoff();
  const started: ((outcome: boolean | Error) => void)[] = [];
  const log: string[] = [];
  let after = 0;
  const runner = new PassRunner({
    pass: () =>
      new Promise<boolean>((resolve, reject) => {
        log.push(`pass ${started.length + 1}`);
        started.push((o) => (o instanceof Error ? reject(o) : resolve(o)));
      }),
    backoff,
    timers,
    onError: (err) => log.push(`error: ${(err as Error).message}`),
    afterPass: () => after++,
  });
  /** finishes the oldest unfinished pass and lets the runner act on it */
  let finished = 0;
  const finish = async (outcome: boolean | Error): Promise<void> => {
    started[finished++]!(outcome);
    await new Promise((r) => setImmediate(r));
  };
  return { runner, timers, backoff, log, finish, passes: () => started.length, afterPasses: () => after };
}

describe("PassRunner", () => {
  it("runs a pass on a trigger; passes never overlap", async () => {
    const h = harness();
    h.runner.trigger();
    expect(h.runner.running).toBe(true);
    h.runner.trigger();
    expect(h.passes()).toBe(1);
    await h.finish(true);
    expect(h.passes()).toBe(2); // the trigger during the pass: once more, at once
  });

  it("many triggers during a pass make one more pass, not many", async () => {
    const h = harness();
    h.runner.trigger();
    for (let i = 0; i < 5; i++) h.runner.trigger();
    await h.finish(true);
    await h.finish(true);
    expect(h.passes()).toBe(2);
    expect(h.runner.running).toBe(false);
    expect(h.afterPasses()).toBe(2);
  });

  it("a failed pass is retried after the backoff, longer each time; a success resets it", async () => {
    const h = harness();
    h.runner.trigger();
    await h.finish(false);
    expect(h.timers.delays()).toEqual([1]);
    h.timers.fireAll();
    expect(h.passes()).toBe(2);
    await h.finish(new Error("boom"));
    expect(h.log).toContain("error: boom");
    expect(h.timers.delays()).toEqual([2]);
    h.timers.fireAll();
    await h.finish(true);
    expect(h.timers.delays()).toEqual([]);
    expect(h.backoff.attempt).toBe(0);
  });

  it("a trigger during a failed pass runs the next pass at once, without advancing the backoff", async () => {
    const h = harness();
    h.runner.trigger();
    h.runner.trigger();
    await h.finish(false);
    expect(h.passes()).toBe(2);
    expect(h.timers.delays()).toEqual([]);
    expect(h.backoff.attempt).toBe(0);
    await h.finish(false);
    expect(h.timers.delays()).toEqual([1]);
  });

  it("a trigger does not wait for a retry timer; one retry timer at a time", async () => {
    const h = harness();
    h.runner.trigger();
    await h.finish(false);
    h.runner.trigger();
    expect(h.passes()).toBe(2);
    await h.finish(false);
    expect(h.timers.delays()).toEqual([2]);
  });

  it("stop waits for the running pass and starts nothing after it", async () => {
    const h = harness();
    h.runner.trigger();
    h.runner.trigger();
    let stopped = false;
    const stopping = h.runner.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    await h.finish(false);
    await stopping;
    expect(h.passes()).toBe(1);
    expect(h.timers.delays()).toEqual([]);
    h.runner.trigger();
    expect(h.passes()).toBe(1);
  });

  it("stop clears a pending retry", async () => {
    const h = harness();
    h.runner.trigger();
    await h.finish(false);
    expect(h.timers.delays()).toEqual([1]);
    await h.runner.stop();
    expect(h.timers.delays()).toEqual([]);
  });

  it("settled resolves when the running pass is over", async () => {
    const h = harness();
    await h.runner.settled(); // nothing running
    h.runner.trigger();
    let done = false;
    const s = h.runner.settled().then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    await h.finish(true);
    await s;
    expect(done).toBe(true);
  });
});
