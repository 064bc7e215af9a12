/**
 * The scheduler role's holder must be a session bound to its node's serfHealth and its agent's
 * houston-agent check (shared/stores/leader.ts holderProblem): any other shape is named, never
 * treated as the scheduler.
 */
import { describe, expect, it } from "vitest";
import { holderProblem } from "../../shared/stores/leader.js";

const session = (checks: string[], ttl = "15s") => ({ id: "s1", node: "h1", checks, ttl });

describe("holderProblem", () => {
  const cases: { title: string; info: ReturnType<typeof session> | null; problem: string | null }[] = [
    {
      title: "serfHealth and the agent's check",
      info: session(["serfHealth", "service:houston-agent"]),
      problem: null,
    },
    {
      title: "both, in any order, with more checks",
      info: session(["service:houston-agent", "x", "serfHealth"], ""),
      problem: null,
    },
    { title: "no checks (held forever)", info: session([], ""), problem: "a session without health checks" },
    {
      title: "serfHealth only (Consul's default)",
      info: session(["serfHealth"]),
      problem: "a session not bound to service:houston-agent",
    },
    {
      title: "the agent's check only",
      info: session(["service:houston-agent"]),
      problem: "a session not bound to serfHealth",
    },
    {
      title: "some other check only",
      info: session(["service:web"]),
      problem: "a session not bound to its node's health (checks service:web)",
    },
    { title: "a session Consul no longer has", info: null, problem: "a session Consul no longer has" },
  ];
  it.each(cases)("$title", ({ info, problem }) => expect(holderProblem(info)).toBe(problem));
});
