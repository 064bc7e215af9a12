/**
 * The agent's own look at a service's health check, just before it registers the service (I/O
 * edge: an HTTP GET of the check's URL, as Consul's HTTP check makes it).
 *
 * Why: Consul runs a new check first at a random moment within its interval (never under 1 s), so
 * a service that is up already would wait for up to an interval before Consul calls it passing,
 * and a rollout waits with it. When the agent's GET answers 2xx, the service is registered with
 * its check passing: it really passed, on this host, a moment ago. Consul's own runs take over from
 * there (a failure turns it critical within one interval). Anything else (refused, timed out, a
 * redirect, 4xx, 5xx, an https URL) registers it "warning" (not passed yet) until Consul's own first
 * run decides: only a pass is passed on (agent/apply.ts says why not critical).
 *
 * The agent asks again only so long per pass (the budget), shared by all the pass's registrations;
 * each service's first ask gets the check's timeout. Once the budget is spent, no service is asked.
 */
import { request } from "node:http";

/** The status code of a GET of `url`, or null (not http:, refused, reset, no answer in time). */
export type GetStatus = (url: string, timeoutMs: number) => Promise<number | null>;

/** How long one pass waits, in all, for services to answer their check's URL. */
export const FIRST_PROBE_BUDGET_MS = 1000;

export class HealthProbe {
  private deadline: number | null = null;

  constructor(
    private readonly budgetMs: number = FIRST_PROBE_BUDGET_MS,
    private readonly io: { get: GetStatus; now(): number; sleep(ms: number): Promise<void> } = {
      get: httpGetStatus,
      now: Date.now,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
  ) {}

  /** Whether `url` answers 2xx within what is left of the budget (asked again while it does not). */
  async passes(url: string, timeoutMs: number): Promise<boolean> {
    const { get, now, sleep } = this.io;
    this.deadline ??= now() + this.budgetMs;
    for (let wait = 20, first = true; ; wait = Math.min(wait * 2, 200), first = false) {
      const left = this.deadline - now();
      if (left <= 0) return false;
      // a service's first ask gets the check's whole timeout, as Consul's would: a loaded host
      // answers slowly, and that is not a failure; the budget bounds the asking again
      const status = await get(url, first ? timeoutMs : Math.min(timeoutMs, left));
      if (status !== null && status >= 200 && status < 300) return true;
      if (this.deadline - now() <= wait) return false;
      await sleep(wait);
    }
  }
}

export function httpGetStatus(url: string, timeoutMs: number): Promise<number | null> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve(null);
  }
  if (target.protocol !== "http:") return Promise.resolve(null);
  return new Promise((resolve) => {
    const req = request(target, {
      method: "GET",
      agent: false,
      headers: { "User-Agent": "Houston agent (first health check)", Accept: "text/plain, text/*, */*" },
    });
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    const done = (status: number | null): void => {
      clearTimeout(timer);
      resolve(status);
    };
    req.once("response", (res) => {
      done(res.statusCode ?? null);
      req.destroy(); // the body is not read: the status code is the answer
    });
    req.once("error", () => done(null));
    req.once("close", () => done(null));
    req.end();
  });
}
