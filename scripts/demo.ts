/**
 * The local demo: a real Consul server, three real systemd test hosts each running a Consul client
 * and the Houston agent, then real deployments of examples/local with the houston CLI.
 * Leaves nothing running unless --keep (then Ctrl-C tears down).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { LocalFleet, REPO } from "./lib/local-fleet.js";

const keep = process.argv.includes("--keep");
const say = (m: string) => process.stderr.write(`\n\x1b[1m== ${m}\x1b[0m\n`);

function houston(consul: string, ...args: string[]): Promise<number> {
  process.stderr.write(`$ houston -c examples/local -e local ${args.join(" ")}\n`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, "dist", "houston.js"), "-c", join(REPO, "examples", "local"), "-e", "local", "--consul", consul, ...args], { stdio: "inherit" });
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write("the demo boots real systemd test hosts (namespaces, overlay mounts): run it as root\n");
    return 2;
  }
  say("Booting 3 systemd test hosts with Consul clients and Houston agents");
  const fleet = await LocalFleet.start({
    hosts: [
      { name: "demo1", meta: { role: "web", zone: "a" } },
      { name: "demo2", meta: { role: "web", zone: "b" } },
      { name: "demo3", meta: { role: "worker", zone: "a" } },
    ],
    log: (m) => process.stderr.write(`   ${m}\n`),
  });
  let failed = 0;
  const step = async (title: string, ...args: string[]) => {
    say(title);
    const code = await houston(fleet.consulAddr, ...args);
    if (code !== 0) {
      failed++;
      process.stderr.write(`(exit status ${code})\n`);
    }
  };
  try {
    process.stderr.write(`   Consul UI while the demo runs: ${fleet.consulAddr}/ui/\n`);
    await step("Hosts and their metadata", "nodes");
    await step("Global units (every host)", "global");
    await step("Service example, version 1: file archive, dependencies, service with an HTTP check", "service", "example", "1");
    await step("Standalone stack tools (role=worker hosts)", "standalone", "tools");
    await step("What runs where", "status");
    const web = fleet.host("demo1");
    say(`The service answering inside ${web.name}`);
    process.stderr.write(await fleet.shell(web.name, "curl", "-s", "127.0.0.1:8080/"));
    await step("Service example, version 2: the new version is confirmed, then version 1 is pruned", "service", "example", "2");
    process.stderr.write(await fleet.shell(web.name, "curl", "-s", "127.0.0.1:8080/"));
    await step("Status after the upgrade", "status", "example");
    await step("History of example", "history", "example");
    if (keep) {
      say(`Keeping everything up (--keep). Consul UI: ${fleet.consulAddr}/ui/  Ctrl-C tears down.`);
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    }
  } finally {
    say("Tearing down");
    await fleet.stop();
  }
  say(failed ? `${failed} step(s) failed` : "Demo complete: nothing left running");
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
