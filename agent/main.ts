/**
 * Entry point of the houston-agent bundle: wires config, Consul, systemd, state, HTTP and the
 * local socket, and stops the agent on SIGTERM/SIGINT.
 */
import { join } from "node:path";
import { Consul } from "../shared/consul.js";
import { AgentConfigError, errorText } from "../shared/errors.js";
import { KvLayout } from "../shared/kv-layout.js";
import { TrustStore } from "../shared/signing.js";
import { AGENT_VERSION, Agent } from "./agent.js";
import { isLoopback, parseConsulAddress } from "../shared/consul-transport.js";
import { USAGE, UsageRequested, VersionRequested, parseAgentConfig } from "./config.js";
import { agentServer } from "./http.js";
import { serveLocalSocket } from "./local-socket.js";
import { AgentState } from "./state.js";
import { Systemd } from "./systemd.js";

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = parseAgentConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof VersionRequested) {
      process.stdout.write(`${AGENT_VERSION}\n`);
      process.exit(0);
    }
    process.stderr.write(err instanceof UsageRequested ? `${USAGE}\n` : `houston-agent: ${errorText(err)}\n${USAGE}\n`);
    process.exit(err instanceof UsageRequested ? 0 : 2);
  }
  let consul: Consul;
  try {
    const url = parseConsulAddress(cfg.consulAddr ?? "http://127.0.0.1:8500");
    if (cfg.consulToken && url.protocol === "http:" && !isLoopback(url) && !cfg.insecureToken) {
      throw new AgentConfigError(
        `refusing to send the Consul token over plain http to ${url.host}: use https:// (with --ca-file) or --insecure-token`,
      );
    }
    consul = new Consul({ addr: url.href, token: cfg.consulToken, tls: cfg.tls });
  } catch (err) {
    process.stderr.write(`houston-agent: ${errorText(err)}\n`);
    process.exit(2);
  }
  const trust = new TrustStore(cfg.trust);
  try {
    const keys = trust.keys();
    if (trust.configured && keys.size === 0)
      throw new AgentConfigError(`--trust ${cfg.trust.join(", ")}: no *.pub keys found`);
  } catch (err) {
    process.stderr.write(`houston-agent: ${errorText(err)}\n`);
    process.exit(2);
  }
  const state = new AgentState(join(cfg.stateDir, "agent.sqlite"));
  const systemd = await Systemd.connect(cfg.dbusAddress);
  systemd.onConnectionLost((err) => {
    process.stderr.write(
      `houston-agent: lost the system bus (${errorText(err)}); exiting so that systemd restarts the agent\n`,
    );
    process.exit(1);
  });
  const agent = new Agent(cfg, { consul, kv: new KvLayout(cfg.prefix), systemd, state, trust });
  const server = agentServer(agent);
  server.on("error", (err) => {
    process.stderr.write(`houston-agent: cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${errorText(err)}\n`);
    process.exit(1);
  });
  server.listen(cfg.listen.port, cfg.listen.host);
  const local = cfg.localSocket ? serveLocalSocket(cfg.localSocket, agent, (m) => agent.log(m)) : null;
  const shutdown = async (): Promise<void> => {
    await agent.stop();
    server.close();
    local?.close();
    systemd.close();
    state.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown());
  process.on("SIGINT", () => void shutdown());
  await agent.start();
  agent.log(
    `running: node ${agent.node}, meta ${JSON.stringify(agent.meta)}, Consul ${consul.addr}, listening on ${cfg.listen.host}:${cfg.listen.port}`,
  );
  if (!trust.configured)
    agent.log(
      "no trusted keys (--trust): unsigned specs are applied; anyone who can write the KV prefix controls this host",
    );
}

main().catch((err: unknown) => {
  process.stderr.write(`houston-agent: ${errorText(err)}\n`);
  process.exit(1);
});
