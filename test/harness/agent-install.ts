/**
 * What a test host gets in its root before its units start: the agent bundle and its native
 * modules (or the agent's OCI archive and the production container unit), the consul binary, the
 * Consul client and Houston agent units (enabled: a rebooted host starts them again) and
 * /etc/houston/agent.env. Copied into the overlay (/opt/...), since a checkout under /tmp would be
 * invisible inside (the hosts' /tmp is private).
 */
import { copyFileSync, cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FleetHost } from "./hosts.js";
import { CONSUL_BIN, ROOT } from "./paths.js";

export interface AgentInstall {
  /** the text of houston-consul.service */
  consulUnit: string;
  /** HOUSTON_PREFIX */
  prefix: string;
  /** the agent's own Consul token (ACLs on) */
  token?: string;
  /** run the agent from this OCI archive with systemd/houston-agent-container.service */
  agentImage?: string;
  /** extra lines of /etc/houston/agent.env */
  agentEnv?: Record<string, string>;
}

export function installAgent(h: FleetHost, o: AgentInstall): void {
  const opt = join(h.root, "opt", "houston");
  mkdirSync(join(opt, "node_modules"), { recursive: true });
  copyFileSync(join(ROOT, "dist", "houston-agent.js"), join(opt, "houston-agent.js"));
  copyFileSync(join(ROOT, "dist", "package.json"), join(opt, "package.json"));
  for (const mod of ["better-sqlite3", "bindings", "file-uri-to-path"]) {
    cpSync(join(ROOT, "node_modules", mod), join(opt, "node_modules", mod), {
      recursive: true,
      filter: (src) => !src.includes(`${mod}/deps`) && !src.includes("/src/") && !src.endsWith(".o"),
    });
  }
  copyFileSync(CONSUL_BIN, join(opt, "consul"));
  const units = join(h.root, "etc", "systemd", "system");
  writeFileSync(join(units, "houston-consul.service"), o.consulUnit);
  mkdirSync(join(h.root, "etc", "houston"), { recursive: true });
  // enabled, so that a reboot of the host starts them again (the hosts boot testhost.target)
  mkdirSync(join(units, "testhost.target.wants"), { recursive: true });
  for (const u of ["houston-consul.service", "houston-agent.service"])
    symlinkSync(`../${u}`, join(units, "testhost.target.wants", u));
  if (o.agentImage) {
    // the production container unit, under the agent's usual name; podman inside a test host keeps
    // its store on the host's private tmpfs and uses runc without a pids controller (recipe notes)
    copyFileSync(join(ROOT, "systemd", "houston-agent-container.service"), join(units, "houston-agent.service"));
    mkdirSync(join(h.root, "var", "lib", "houston"), { recursive: true });
    copyFileSync(o.agentImage, join(h.root, "var", "lib", "houston", "agent.oci.tar"));
    const lim = "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768";
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    writeFileSync(
      join(h.root, "etc", "houston", "container.env"),
      `HOUSTON_IMAGE=localhost/houston-agent:${version}\nPODMAN_GLOBAL_ARGS=--root /tmp/ps --runroot /run/pr --runtime runc --cgroup-manager cgroupfs --events-backend file\nPODMAN_RUN_ARGS=--pids-limit=-1 ${lim}\n`,
    );
  } else copyFileSync(join(ROOT, "systemd", "houston-agent.service"), join(units, "houston-agent.service"));
  writeFileSync(
    join(h.root, "etc", "houston", "agent.env"),
    `HOUSTON_LISTEN=0.0.0.0:9631\nHOUSTON_PREFIX=${o.prefix}\n${o.token ? `CONSUL_HTTP_TOKEN=${o.token}\n` : ""}${Object.entries(
      o.agentEnv ?? {},
    )
      .map(([k, v]) => `${k}=${v}\n`)
      .join("")}`,
    { mode: 0o600 },
  );
}
