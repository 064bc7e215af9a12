/**
 * The agent's HTTP surface (hono): /health for Consul's check, /status, /metrics.
 */
import { Hono } from "hono";
import type { Agent } from "./agent.js";

export function agentApp(agent: Agent): Hono {
  const app = new Hono();
  // 503 until the agent knows who it is and has reconciled once: Consul's check must not vouch earlier
  app.get("/health", (c) =>
    c.json(
      { ok: agent.ready, node: agent.node, consulReachable: agent.consulReachable, lastPassAt: agent.lastPassAt },
      agent.ready ? 200 : 503,
    ),
  );
  app.get("/status", (c) => c.json(agent.snapshot()));
  app.get("/metrics", (c) => c.text(agent.metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4" }));
  return app;
}
