/**
 * One retry policy for everything: exponential backoff with full jitter, abortable sleeps.
 */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions = { minMs: 200, maxMs: 10_000 }) {}

  /** Delay for the next retry: random in [minMs, min(maxMs, minMs * 2^attempt)]. */
  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.opts.minMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return this.opts.minMs + Math.random() * (ceiling - this.opts.minMs);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after ms, or early (without throwing) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
