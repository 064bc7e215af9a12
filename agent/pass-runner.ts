/**
 * Runs the agent's reconcile passes one at a time (as balena-supervisor's exclusive runner and
 * fleet's pkg/reconcile.go do): a trigger while a pass runs asks for one more after it ("again"),
 * however many triggers came; a failed pass is retried after a backoff; a pass that succeeds
 * resets it. The states:
 *
 *   idle ──trigger──▶ running ──done, no trigger meanwhile──▶ idle (a failure: retry timer set)
 *                     running ──trigger──▶ running+again ──done──▶ running (the next pass at once)
 *   any ──stop──▶ stopped (the running pass finishes; no other starts)
 *
 * A retry timer does not hold a trigger back: a trigger before it fires runs a pass at once.
 */
export interface RetryDelay {
  /** ms to wait before the next retry (grows with each call) */
  next(): number;
  reset(): void;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface PassRunnerOptions {
  /** one pass; resolves true when it succeeded (false or a throw: retried after the backoff) */
  pass: () => Promise<boolean>;
  backoff: RetryDelay;
  /** a pass that threw */
  onError: (err: unknown) => void;
  /** after every pass, before the next starts (waiters on "a pass happened") */
  afterPass?: () => void;
  timers?: Timers;
}

export class PassRunner {
  private current: Promise<void> | null = null;
  private again = false;
  private retry: unknown = null;
  private stopped = false;
  private readonly timers: Timers;

  constructor(private readonly opts: PassRunnerOptions) {
    this.timers = opts.timers ?? realTimers;
  }

  get running(): boolean {
    return this.current !== null;
  }

  /** A pass now, or once more after the running one. */
  trigger(): void {
    if (this.stopped) return;
    if (this.current) {
      this.again = true;
      return;
    }
    this.current = this.run();
  }

  /** Resolves when the running pass (if any) is over; the next one is not waited for. */
  async settled(): Promise<void> {
    await this.current;
  }

  /** No pass starts from now on; resolves once the running one is over. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== null) this.timers.clear(this.retry);
    this.retry = null;
    await this.current;
  }

  private async run(): Promise<void> {
    let ok = false;
    try {
      ok = await this.opts.pass();
    } catch (err) {
      this.opts.onError(err);
    }
    this.current = null;
    this.opts.afterPass?.();
    if (this.stopped) return;
    if (this.again) {
      // the backoff is neither advanced nor reset: the next pass decides
      this.again = false;
      this.trigger();
    } else if (!ok) {
      if (this.retry !== null) this.timers.clear(this.retry);
      this.retry = this.timers.set(() => {
        this.retry = null;
        this.trigger();
      }, this.opts.backoff.next());
    } else this.opts.backoff.reset();
  }
}
