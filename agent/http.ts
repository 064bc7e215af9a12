/**
 * The agent's HTTP surface: /health (for people and probes: Consul's check of the agent is a TTL
 * check the agent passes itself, see registrar.ts), /status, /metrics. Three read-only routes
 * on node:http. (It was hono on @hono/node-server: that adapter reads the global Request and
 * Response at import, which loads Node's fetch implementation, undici: 13 MB more RSS on every
 * host, measured in the footprint benchmark, for three GET routes.)
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { Agent } from "./agent.js";

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

export function agentServer(agent: Agent): Server {
  return createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) return send(res, 405, "text/plain", "only GET\n", false);
    const json = (status: number, body: unknown): void =>
      send(res, status, "application/json", JSON.stringify(body), head);
    switch (path) {
      case "/health":
        // 503 until the agent knows who it is and has reconciled once (as its Consul check: registrar.ts)
        return json(agent.ready ? 200 : 503, {
          ok: agent.ready,
          node: agent.node,
          consulReachable: agent.consulReachable,
          lastPassAt: agent.lastPassAt,
        });
      case "/status":
        return json(200, agent.snapshot());
      case "/metrics":
        return send(res, 200, "text/plain; version=0.0.4", agent.metrics.render(), head);
      default:
        return send(res, 404, "text/plain", "not found: /health, /status, /metrics\n", head);
    }
  });
}
