/**
 * The local demo: a real Consul server, three real systemd test hosts each running a Consul client
 * and the Houston agent, then real deployments of examples/local with the houston CLI.
 * Leaves nothing running unless --keep (then Ctrl-C or SIGTERM tears down; a second Ctrl-C
 * during teardown is ignored so that nothing is left half-way). `--down` removes whatever a
 * killed demo left behind.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { LocalFleet } from "../test/harness/local-fleet.js";
import { ROOT } from "../test/harness/paths.js";

const keep = process.argv.includes("--keep");
const down = process.argv.includes("--down");
// bold headings only on a terminal, and never with NO_COLOR (https://no-color.org)
const bold = process.stderr.isTTY === true && !process.env.NO_COLOR;
const say = (m: string) => process.stderr.write(bold ? `\n\x1b[1m== ${m}\x1b[0m\n` : `\n== ${m}\n`);

function houston(consul: string, ...args: string[]): Promise<number> {
  process.stderr.write(`$ houston -c examples/local -e local ${args.join(" ")}\n`);
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        join(ROOT, "dist", "houston.js"),
        "-c",
        join(ROOT, "examples", "local"),
        "-e",
        "local",
        "--consul",
        consul,
        ...args,
      ],
      { stdio: "inherit" },
    );
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

/** Commands a user can copy into another shell while the fleet is up: they work as printed. */
function tryItBlock(consulAddr: string, root: string): string {
  const h = "npx houston -c examples/local -e local";
  return [
    `cd ${root}`,
    `export CONSUL_HTTP_ADDR=${consulAddr}`,
    `${h} status`,
    `${h} service example 3`,
    `${h} history`,
  ].join("\n");
}

/** Resolves on SIGINT or SIGTERM; the timer keeps the event loop (and so the demo) alive until then. */
function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const alive = setInterval(() => undefined, 1 << 30);
    const done = (): void => {
      clearInterval(alive);
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write("the demo boots real systemd test hosts (namespaces, overlay mounts): run it as root\n");
    return 2;
  }
  if (down) {
    const removed = await LocalFleet.down("demo");
    say(removed.length ? `Removed what a demo left: ${removed.join(", ")}` : "No demo was left running");
    return 0;
  }
  // a demo killed earlier would block the host names: clean it up first
  const stale = await LocalFleet.down("demo");
  if (stale.length) say(`Removed what an earlier demo left: ${stale.join(", ")}`);
  say("Booting 3 systemd test hosts with Consul clients and Houston agents");
  const fleet = await LocalFleet.start({
    name: "demo",
    hosts: [
      { name: "demo1", meta: { role: "web", zone: "a" } },
      { name: "demo2", meta: { role: "web", zone: "b" } },
      { name: "demo3", meta: { role: "worker", zone: "a" } },
    ],
    log: (m) => process.stderr.write(`   ${m}\n`),
  });
  let failed = 0;
  // Ctrl-C while the steps run: skip the rest and tear down (the houston child gets it too)
  let interrupted = false;
  const onInterrupt = (): void => {
    interrupted = true;
  };
  process.on("SIGINT", onInterrupt);
  process.on("SIGTERM", onInterrupt);
  const step = async (title: string, ...args: string[]) => {
    if (interrupted) return;
    say(title);
    const code = await houston(fleet.consulAddr, ...args);
    if (code !== 0) {
      failed++;
      process.stderr.write(`(exit status ${code})\n`);
    }
  };
  const tryIt = (): void => {
    say(
      `Try it yourself in another shell while the fleet is up${keep ? "" : " (npm run demo -- --keep keeps it up)"}:`,
    );
    process.stderr.write(`${tryItBlock(fleet.consulAddr, ROOT)}\n`);
  };
  try {
    process.stderr.write(`   Consul UI while the demo runs: ${fleet.consulAddr}/ui/\n`);
    tryIt();
    await step("Hosts and their metadata", "nodes");
    await step("Global units: heartbeat@1 runs on every host (Global=true)", "global");
    await step(
      "Where service example 1 would go: the service on both web hosts (Instances=2), the cache on every web host (global), the worker beside the service (no placement of its own)",
      "plan",
      "service",
      "example",
      "1",
    );
    await step(
      "Service example, version 1: file archive, dependencies, service with an HTTP check",
      "service",
      "example",
      "1",
    );
    await step("Standalone stack tools (role=worker hosts)", "standalone", "tools");
    await step("What runs where (example-worker beside each copy of the service; heartbeat everywhere)", "status");
    const web = fleet.host("demo1");
    if (!interrupted) {
      say(`The service answering inside ${web.name}`);
      process.stderr.write(await fleet.shell(web.name, "curl", "-s", "127.0.0.1:8080/"));
    }
    await step(
      "Service example, version 2: the new version is confirmed, then version 1 is pruned",
      "service",
      "example",
      "2",
    );
    if (!interrupted) process.stderr.write(await fleet.shell(web.name, "curl", "-s", "127.0.0.1:8080/"));
    // ServicePort=auto: no fixed port; the tools stack's client on demo3 finds the greeter through Consul
    const findGreeter = async (): Promise<void> => {
      if (interrupted) return;
      say("The greeter found through Consul from demo3 (/opt/houston-tools/find-greeter, as greeter-client does)");
      try {
        process.stderr.write(await fleet.shell("demo3", "/opt/houston-tools/find-greeter"));
      } catch (err) {
        failed++;
        process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      }
    };
    await step(
      "Service greeter, version 1: ServicePort=auto, the agent picks its port and registers it in Consul",
      "service",
      "greeter",
      "1",
    );
    await findGreeter();
    await step(
      "Service greeter, version 2: beside version 1 on a port of its own; once confirmed, version 1 is pruned",
      "service",
      "greeter",
      "2",
    );
    await findGreeter();
    await step("Status after the upgrade", "status", "example");
    await step("History of example", "history", "example");
    process.off("SIGINT", onInterrupt);
    process.off("SIGTERM", onInterrupt);
    if (keep && !interrupted) {
      tryIt();
      say(`Keeping everything up (--keep). Consul UI: ${fleet.consulAddr}/ui/  Ctrl-C tears down.`);
      await untilSignal();
    }
  } finally {
    // a second Ctrl-C (or a SIGTERM) during teardown must not leave half of it behind
    const holdOn = (): void => void process.stderr.write("   still tearing down; it finishes by itself\n");
    process.on("SIGINT", holdOn);
    process.on("SIGTERM", holdOn);
    say("Tearing down");
    await fleet.stop();
  }
  say(
    failed
      ? `${failed} step(s) failed`
      : interrupted
        ? "Interrupted: nothing left running"
        : "Demo complete: nothing left running",
  );
  return failed ? 1 : interrupted ? 130 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
