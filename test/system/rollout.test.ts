/**
 * End to end: the houston CLI against a real Consul server and three real systemd test hosts
 * (role=web: e2e1, e2e2; role=worker: e2e3), each running a Consul client and the agent.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeployLock } from "../../controller/rollout/lock.js";
import { readSpec } from "../../shared/stores/specs.js";
import { LocalFleet } from "../harness/local-fleet.js";
import { ROOT } from "../harness/paths.js";
import { configDir, houston, startCli, writeConfig } from "../helpers/cli.js";
import { eventually, report } from "../helpers/specs.js";

let fleet: LocalFleet;
beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: [
      { name: "e2e1", meta: { role: "web" } },
      { name: "e2e2", meta: { role: "web" } },
      { name: "e2e3", meta: { role: "worker" } },
    ],
  });
});
afterAll(async () => fleet?.stop());

const local = join(ROOT, "examples", "local");
const run = (dir: string, ...args: string[]) => houston(fleet.consulAddr, dir, ...args);
const localRun = (...args: string[]) => houston(fleet.consulAddr, local, "-e", "local", ...args);
const state = (host: string, unit: string) => fleet.unitState(host, unit);
const unitFile = (host: string, unit: string) => existsSync(join(fleet.host(host).root, "etc/systemd/system", unit));
const pid = async (host: string, unit: string) =>
  (await fleet.shell(host, "systemctl", "show", "-p", "MainPID", "--value", unit)).trim();

const manifest = (services: Record<string, string[]>) =>
  `environments:\n  test: {}\nshared-units:\n${Object.entries(services)
    .map(([k, v]) => `  ${k}: [${v.join(", ")}]`)
    .join("\n")}\n`;
// not about confirmation: MinHealthy=0 spares each rollout the 5 s window of a Type=simple unit (test/system/watch.test.ts checks that)
const sleeper =
  "[Unit]\nDescription=sleeper %i\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nMinHealthy=0\n";

describe("rollout end to end", () => {
  it("deploys all three types; the service is confirmed in Consul; status tells the truth", async () => {
    const g = await localRun("global");
    expect(g.code, g.stderr).toBe(0);
    const s = await localRun("service", "example", "1");
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/INFO +Deploying example-file-deploy@[0-9a-f]{8}\.service\n/);
    expect(s.stderr).toContain("INFO     Validated service is running with Consul");
    expect(s.stderr).toContain("Eagle, looking great. You're Go.");
    const t = await localRun("standalone", "tools");
    expect(t.code, t.stderr).toBe(0);
    for (const h of ["e2e1", "e2e2"]) expect(await state(h, "example@1.service")).toBe("active");
    expect(await state("e2e3", "example@1.service")).not.toBe("active");
    expect(await state("e2e3", "tools-toolbox@1.service")).toBe("active");
    for (const h of ["e2e1", "e2e2", "e2e3"]) expect(await state(h, "heartbeat@1.service")).toBe("active");
    // the worker has no placement of its own: it runs where the service runs; the cache is global
    const workerOn = [];
    for (const h of ["e2e1", "e2e2", "e2e3"])
      if ((await state(h, "example-worker@2.service")) === "active") workerOn.push(h);
    expect(workerOn).toEqual(["e2e1", "e2e2"]);
    for (const h of ["e2e1", "e2e2"]) expect(await state(h, "example-cache@1.4.24.service")).toBe("active");
    const { entries } = await fleet.consul.healthService("example", { passing: true, tag: "version:1" });
    expect(entries.map((e) => e.Node.Node).sort()).toEqual(["e2e1", "e2e2"]);
    // a new service version with the same files and dependencies leaves the dependencies running
    const cachePid = await pid("e2e1", "example-cache@1.4.24.service");
    const v2 = await localRun("service", "example", "2");
    expect(v2.code, v2.stderr).toBe(0);
    expect(v2.stderr).toContain("INFO     Destroying example@1.service");
    expect(await pid("e2e1", "example-cache@1.4.24.service")).toBe(cachePid);
    const st = await localRun("--json", "status", "example");
    expect(st.code).toBe(0);
    const json = JSON.parse(st.stdout) as {
      healthy: boolean;
      stacks: { units: { node: string; unit: string; activeState: string }[] }[];
    };
    expect(json.healthy).toBe(true);
    expect(
      json.stacks[0]!.units.filter((u) => u.unit === "example@2.service").map((u) => `${u.node}:${u.activeState}`),
    ).toEqual(["e2e1:active", "e2e2:active"]);
    expect(json.stacks[0]!.units.some((u) => u.unit === "example@1.service")).toBe(false);
    const plan = JSON.parse((await localRun("--json", "plan", "service", "example", "3")).stdout) as {
      consul: { reachable: boolean; generation: number };
      diff: { added: string[]; replaced: string[]; unchanged: string[] };
    };
    expect(plan.consul).toMatchObject({ reachable: true, generation: 3 });
    expect(plan.diff.added).toEqual(["example@3.service"]);
    expect(plan.diff.replaced).toEqual(["example@2.service"]);
    expect(plan.diff.unchanged).toContain("example-cache@1.4.24.service");
  });

  it("an upgrade prunes the old version and its archive once the new one is confirmed", async () => {
    const dir = configDir({
      "manifest.yaml": manifest({ up: ["helper:1"] }),
      "units/shared/helper.service": sleeper,
      "units/service/up.service": sleeper,
      "files/service/up.yaml": "- {path: /etc/up/conf, content: v1}\n",
    });
    expect((await run(dir, "-s", "service", "up", "1")).code).toBe(0);
    const archiveOf = async () =>
      (await readSpec(fleet.consul, fleet.kv, "up")).spec!.units.find((u) => u.archive)!.archive!;
    const oldArchive = await archiveOf();
    writeConfig(dir, { "files/service/up.yaml": "- {path: /etc/up/conf, content: v2}\n" });
    // keeping one generation's archives (the live one), the old archive goes at once
    const r = await run(dir, "-s", "--keep-generations", "1", "service", "up", "2");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("INFO     Destroying up@1.service");
    expect(r.stderr).toMatch(/Destroying up-file-deploy@[0-9a-f]{8}\.service/);
    expect(r.stderr).toMatch(/Removed archive [0-9a-f]{12} from Consul/);
    for (const h of ["e2e1", "e2e2"]) {
      expect(await state(h, "up@2.service")).toBe("active");
      expect(unitFile(h, "up@1.service")).toBe(false);
    }
    // the dependency's version is unchanged but its text is not (it now Requires= the new archive
    // unit, whose files it may read): rewritten and restarted in place, still active
    expect(await state("e2e1", "up-helper@1.service")).toBe("active");
    expect(await fleet.consul.kvGet(fleet.kv.archiveMeta(oldArchive))).toBeNull();
    expect(await fleet.consul.kvKeys(fleet.kv.archive(oldArchive))).toEqual([]);
    expect(await fleet.consul.kvGet(fleet.kv.archiveMeta(await archiveOf()))).not.toBeNull();
    const hist = JSON.parse((await run(dir, "--json", "history", "up")).stdout) as { result: string }[];
    expect(hist.map((h) => h.result)).toEqual(["success", "success"]);
  });

  it("a failing dependency fails the rollout, removes the new units, keeps the old version serving", async () => {
    const flaky =
      "[Unit]\nDescription=flaky %i\n\n[Service]\nExecStart=/bin/sh -c 'echo starting flaky %i; test %i != 2 || exit 3; exec sleep infinity'\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n";
    const dir = configDir({
      "manifest.yaml": manifest({ shaky: ["flaky:1"] }),
      "units/shared/flaky.service": flaky,
      "units/service/shaky.service": sleeper,
    });
    expect((await run(dir, "-s", "service", "shaky", "1")).code).toBe(0);
    const servicePid = await pid("e2e1", "shaky@1.service");
    writeConfig(dir, { "manifest.yaml": manifest({ shaky: ["flaky:2"] }) });
    const r = await run(dir, "-s", "service", "shaky", "2");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /ERROR +shaky-flaky@2\.service failed on e2e[12]: shaky-flaky@2\.service failed \(Result=exit-code\)/,
    );
    expect(r.stderr).toContain("starting flaky 2");
    expect(r.stderr).toContain("INFO     Removing shaky-flaky@2.service");
    for (const h of ["e2e1", "e2e2"]) {
      expect(await state(h, "shaky@1.service")).toBe("active");
      expect(await state(h, "shaky-flaky@1.service")).toBe("active");
      expect(unitFile(h, "shaky-flaky@2.service")).toBe(false);
      expect(unitFile(h, "shaky@2.service")).toBe(false);
    }
    expect(await pid("e2e1", "shaky@1.service")).toBe(servicePid);
    const hist = JSON.parse((await run(dir, "--json", "history", "shaky")).stdout) as {
      result: string;
      message: string;
    }[];
    expect(hist.at(-1)).toMatchObject({ result: "rolled-back" });
    expect(hist.at(-1)!.message).toContain("shaky-flaky@2.service failed");
  });

  it("a group deploy (blue/green) leaves the other group alone", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ bg: [] }), "units/service/bg.service": sleeper });
    expect((await run(dir, "-s", "-g", "blue", "service", "bg", "1")).code).toBe(0);
    expect((await run(dir, "-s", "-g", "green", "service", "bg", "1")).code).toBe(0);
    const green = await pid("e2e1", "bg:green@1.service");
    const r = await run(dir, "-s", "-g", "blue", "service", "bg", "2");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Destroying bg:blue@1.service");
    expect(r.stderr).not.toContain("Destroying bg:green");
    expect(await state("e2e1", "bg:blue@2.service")).toBe("active");
    expect(unitFile("e2e1", "bg:blue@1.service")).toBe(false);
    expect(await pid("e2e1", "bg:green@1.service")).toBe(green);
    const rm = await houston(fleet.consulAddr, dir, "remove", "bg", "-g", "green");
    expect(rm.code, rm.stderr).toBe(0);
    expect(unitFile("e2e1", "bg:green@1.service")).toBe(false);
    expect(await state("e2e1", "bg:blue@2.service")).toBe("active");
  });

  it("a lock held by another session is refused with a clear message; --force-unlock says whose it breaks", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ locked: [] }), "units/service/locked.service": sleeper });
    const lock = await DeployLock.acquire(fleet.consul, fleet.kv, "locked", "deploy by a colleague");
    try {
      const r = await run(dir, "-s", "service", "locked", "1");
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(
        /ERROR +stack locked is locked by \w+@\S+ \(pid \d+, deploy by a colleague, since .*\); wait for it to finish, or break it with --force-unlock/,
      );
      const f = await run(dir, "-s", "--force-unlock", "service", "locked", "1");
      expect(f.code, f.stderr).toBe(0);
      expect(f.stderr).toMatch(
        /WARNING +Broke the deploy lock of locked held by \w+@\S+ \(pid \d+, deploy by a colleague/,
      );
    } finally {
      await lock.release();
    }
  });

  /** Starts deploying `stack` (a 4 s dependency, then the service) and resolves once the rollout is under way. */
  async function slowRollout(stack: string) {
    const slow =
      "[Unit]\nDescription=slow %i\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 4\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n";
    const dir = configDir({
      "manifest.yaml": manifest({ [stack]: ["slow:1"] }),
      "units/shared/slow.service": slow,
      [`units/service/${stack}.service`]: sleeper,
    });
    const cli = startCli(fleet.consulAddr, dir, ["-s", "service", stack, "1"]);
    await eventually(
      "the slow unit to be starting",
      async () => (await state("e2e1", `${stack}-slow@1.service`)) === "activating",
    );
    return { dir, ...cli };
  }

  it("controller killed mid-rollout: its lock expires and a rerun completes", async () => {
    const { dir, ...first } = await slowRollout("killed");
    first.child.kill("SIGKILL");
    await first.done;
    const refused = await run(dir, "-s", "service", "killed", "1");
    expect(refused.code).toBe(4); // the dead controller's session still holds the lock for up to its TTL
    const rerun = await eventually(
      "the lock to expire",
      async () => {
        const r = await run(dir, "-s", "service", "killed", "1");
        return r.code === 4 ? null : r;
      },
      60_000,
    );
    expect(rerun.code, rerun.stderr).toBe(0);
    for (const h of ["e2e1", "e2e2"]) expect(await state(h, "killed@1.service")).toBe("active");
  }, 120_000);

  it("Ctrl-C mid-rollout gives the lock back at once and says what is live", async () => {
    const { dir, ...first } = await slowRollout("intr");
    first.child.kill("SIGINT");
    const r = await first.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(
      /ERROR +Interrupted during the deployment of intr 1; released the deploy lock of intr\. Generation \d+ is live with the new units: run the same command again to finish it\./,
    );
    const rerun = await run(dir, "-s", "service", "intr", "1");
    expect(rerun.code, rerun.stderr).toBe(0);
    // the interrupted deploy left its row, then the rerun's; generations agree with status's
    const history = await run(dir, "history", "intr");
    expect(history.stdout).toMatch(/\n\d+ +interrupted .*Interrupted during the deployment of intr 1/);
    expect(history.stdout).toMatch(/\n\d+(→\d+)? +success /);
  });

  it("SIGHUP (the terminal closed) mid-rollout is handled like Ctrl-C: the lock is given back at once", async () => {
    const { dir, ...first } = await slowRollout("hup");
    first.child.kill("SIGHUP");
    const r = await first.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/Interrupted during the deployment of hup 1; released the deploy lock of hup\./);
    const rerun = await run(dir, "-s", "service", "hup", "1"); // not refused (exit 4): the lock is free
    expect(rerun.code, rerun.stderr).toBe(0);
  });

  it("a canary that fails stops the rollout before the other hosts get anything", async () => {
    const picky =
      // fails its start job on e2e1 (ExecStartPre); a unit that dies right after it became active
      // can pass the canary's one look without a Consul check: --min-healthy (below) catches it
      "[Unit]\nDescription=picky %i\n\n[Service]\nExecStartPre=/bin/sh -c 'test \"$(hostname)\" != e2e1 || exit 7'\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n";
    const dir = configDir({
      "manifest.yaml": manifest({ canary: ["picky:1"] }),
      "units/shared/picky.service": picky,
      "units/service/canary.service": sleeper,
    });
    const r = await run(dir, "-s", "--canary", "1", "service", "canary", "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/INFO +Canary 1\/2 \(generation \d+\): e2e1/);
    expect(r.stderr).toMatch(/canary-picky@1\.service failed on e2e1/);
    expect(r.stderr).not.toContain("Batch 2/2");
    const journal = await fleet.shell("e2e2", "journalctl", "-u", "houston-agent", "--no-pager", "-o", "cat");
    expect(journal).not.toContain("canary-picky");
    expect(await report(fleet.consul, fleet.kv, "e2e2", "canary")).toBeNull();
    expect(unitFile("e2e1", "canary-picky@1.service")).toBe(false);
  });

  it("--min-healthy watches a batch after it is active: a canary unit killed meanwhile stops the rollout", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ watched: [] }), "units/service/watched.service": sleeper });
    const cli = startCli(fleet.consulAddr, dir, [
      "-s",
      "--canary",
      "1",
      "--min-healthy",
      "600",
      "service",
      "watched",
      "1",
    ]);
    // the unit dies while the canary is watched (the CLI says when that starts): no timing guess
    const watching = new Promise<string>((resolve) => {
      let text = "";
      cli.child.stderr?.on("data", (d: Buffer) => {
        text += d.toString();
        const host = /Canary 1\/2 \(generation \d+\): (\S+)/.exec(text)?.[1];
        if (host && /Watching watched@1\.service for 600s \(--min-healthy\)/.test(text)) resolve(host);
      });
    });
    const canary = await Promise.race([watching, cli.done.then((r) => Promise.reject(new Error(r.stderr)))]);
    await fleet.shell(canary, "systemctl", "kill", "--signal=SIGKILL", "watched@1.service");
    const r = await cli.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `watched@1\\.service failed on ${canary}: watched@1\\.service failed \\(Result=signal\\) within its window`,
      ),
    );
    expect(r.stderr).not.toContain("Batch 2/2");
    const other = ["e2e1", "e2e2"].find((h) => h !== canary) ?? "";
    expect(await report(fleet.consul, fleet.kv, other, "watched")).toBeNull();
    // a healthy batch is watched for the time asked, then the rollout carries on
    const ok = await run(dir, "-s", "--min-healthy", "1", "service", "watched", "1");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/Watching watched@1\.service for 1s \(--min-healthy\)/);
  });

  it("--max-parallel updates hosts in batches, each confirmed before the next", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ batched: [] }), "units/service/batched.service": sleeper });
    const r = await run(dir, "-s", "--max-parallel", "1", "service", "batched", "1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /Batch 1\/2 \(generation \d+\): e2e1[\s\S]*batched@1\.service is active on e2e1\n[\s\S]*Batch 2\/2 \(generation \d+\): e2e2[\s\S]*batched@1\.service is active on e2e1, e2e2/,
    );
    // the last batch lifts the host allowlist: the spec is the plain deployment again
    const spec = (await readSpec(fleet.consul, fleet.kv, "batched")).spec!;
    expect(spec.units.every((u) => u.hosts === undefined)).toBe(true);
  });

  it("a service that never passes its Consul check fails the rollout and is removed", async () => {
    const unhealthy =
      "[Unit]\nDescription=unhealthy\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=9\nServiceCheckInterval=1s\n";
    const dir = configDir({ "manifest.yaml": manifest({ sick: [] }), "units/service/sick.service": unhealthy });
    const r = await run(dir, "--timeout", "12", "service", "sick", "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("sick@1.service is active on e2e1, e2e2");
    expect(r.stderr).toMatch(
      /ERROR +sick@1\.service failed on e2e1, e2e2: sick \(version:1\) is not passing in Consul on e2e1, e2e2/,
    );
    expect(unitFile("e2e1", "sick@1.service")).toBe(false);
    await eventually(
      "the service to be deregistered",
      async () => (await fleet.consul.healthService("sick")).entries.length === 0,
    );
    // a failed first deploy leaves no spec: status says what happened to the attempt
    const st = await run(dir, "status", "sick");
    expect(st.stdout).toMatch(
      /^stack sick is not deployed; last attempt rolled-back: generation \d+, \S+ ago: Deployment of sick 1 failed: sick@1\.service failed on e2e1, e2e2/,
    );
  });

  it("a check that stays critical longer than one unit may take fails the rollout then, quoting its output", async () => {
    const unhealthy =
      "[Unit]\nDescription=unhealthy\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=9\nServiceCheckInterval=1s\n";
    const dir = configDir({ "manifest.yaml": manifest({ crit: [] }), "units/service/crit.service": unhealthy });
    const r = await run(dir, "-d", "1", "-m", "4", "--timeout", "600", "service", "crit", "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/INFO +Consul check of crit on e2e1: critical/);
    // Consul syncs a check's output to the catalog only when its status changes (or every 5 min)
    expect(r.stderr).toMatch(
      /ERROR +crit@1\.service failed on e2e\d: its Consul check stayed critical for \d+s: (.*connection refused|\(no output in Consul's catalog yet\))/,
    );
    expect(r.stderr).not.toMatch(/timed out/);
  });

  it("a check that answers 404 fails the rollout after three answers, quoting the answer, not after -d × -m", async () => {
    // the server is up and answers every path but /health with its file list: /health is 404
    const notFound =
      "[Unit]\nDescription=not found\n\n[Service]\nExecStart=/usr/bin/python3 -m http.server 18093 --bind 127.0.0.1\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=18093\nServiceCheckHTTP=http://127.0.0.1:18093/health\n";
    const dir = configDir({ "manifest.yaml": manifest({ nf: [] }), "units/service/nf.service": notFound });
    // default flags: -d 5 -m 15 would wait 75 s for a check that never answers; this one answers
    const r = await run(dir, "service", "nf", "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /ERROR +nf@1\.service failed on e2e\d: its check answered HTTP GET http:\/\/127\.0\.0\.1:18093\/health: 404 File not found \(for \d+s\)/,
    );
    expect(r.stderr).not.toMatch(/serfHealth|Agent alive and reachable/);
    expect(r.stderr).not.toMatch(/timed out/);
  });

  it("a service that crashes right after it started fails the rollout at once, with its Result and log", async () => {
    // Type=simple: systemd says active first; the process dies a moment later
    const crashy =
      "[Unit]\nDescription=crashy\n\n[Service]\nExecStart=/bin/sh -c 'sleep 0.3; echo crashed-on-purpose; exit 7'\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n\n[X-Houston]\nServicePort=9\nServiceCheckInterval=1s\n";
    const dir = configDir({ "manifest.yaml": manifest({ crashy: [] }), "units/service/crashy.service": crashy });
    const r = await run(dir, "--timeout", "600", "service", "crashy", "1");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERROR +crashy@1\.service failed on e2e\d: .*exit-code/);
    expect(r.stderr).toContain("crashed-on-purpose");
    expect(r.stderr).not.toMatch(/timed out/);
  });

  it("the archives of the last --keep-generations successes stay: rollback to any of them restores their files", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ keep: [] }), "units/service/keep.service": sleeper });
    const conf = (h: string) => readFileSync(join(fleet.host(h).root, "etc/keep/conf"), "utf8");
    for (const v of ["1", "2", "3"]) {
      writeConfig(dir, { "files/service/keep.yaml": `- {path: /etc/keep/conf, content: files-of-v${v}}\n` });
      const r = await run(dir, "-s", "--keep-generations", "2", "service", "keep", v);
      expect(r.code, r.stderr).toBe(0);
    }
    const hist = JSON.parse((await run(dir, "--json", "history", "keep")).stdout) as {
      generation: number;
      deployment: { version: string };
      rollback: boolean;
    }[];
    expect(hist.map((h) => `${h.deployment.version}:${h.rollback}`)).toEqual(["1:false", "2:true", "3:true"]);
    const text = await run(dir, "history", "keep");
    expect(text.stdout).toMatch(/no \(archive pruned\)/);
    const v1 = hist[0]!.generation;
    const refused = await houston(fleet.consulAddr, dir, "-s", "rollback", "keep", String(v1));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/was pruned from Consul \(only the last --keep-generations/);
    const r = await houston(fleet.consulAddr, dir, "-s", "rollback", "keep", String(hist[1]!.generation));
    expect(r.code, r.stderr).toBe(0);
    expect(await state("e2e1", "keep@2.service")).toBe("active");
    expect(conf("e2e1")).toBe("files-of-v2");
  });

  it("--json prints the rollout as NDJSON events; a terminal gets one live progress line", async () => {
    const dir = configDir({
      "manifest.yaml": manifest({ live: ["dep:1"] }),
      "units/shared/dep.service": sleeper,
      "units/service/live.service": sleeper,
    });
    const r = await run(dir, "--json", "-s", "service", "live", "1");
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; text?: string; message?: string; elapsedMs: number });
    expect(events.some((e) => e.event === "progress" && /waiting on e2e/.test(e.text ?? ""))).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: "log", message: "Eagle, looking great. You're Go." });
    // a pseudo-terminal (script(1)), outside CI: the progress line is redrawn in place with the elapsed time
    const { execFileSync } = await import("node:child_process");
    const env = { ...process.env };
    delete env.CI;
    const cmd = [
      process.execPath,
      join(ROOT, "dist", "houston.js"),
      "-c",
      dir,
      "-e",
      "test",
      "--consul",
      fleet.consulAddr,
      "-s",
      "service",
      "live",
      "2",
    ]
      .map((a) => `'${a}'`)
      .join(" ");
    const tty = execFileSync("script", ["-qec", cmd, "/dev/null"], { env, encoding: "utf8" });
    expect(tty).toMatch(/\r\x1b\[Klive(-dep)?@[12]\.service: .*waiting on e2e\d.* \(\d+s\)/);
    expect(tty).toContain("You're Go");
  });

  it("rollback redeploys an earlier generation through the same flow; remove clears the stack", async () => {
    const dir = configDir({ "manifest.yaml": manifest({ rb: [] }), "units/service/rb.service": sleeper });
    expect((await run(dir, "-s", "service", "rb", "1")).code).toBe(0);
    expect((await run(dir, "-s", "service", "rb", "2")).code).toBe(0);
    const r = await houston(fleet.consulAddr, dir, "-s", "rollback", "rb");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Rolling back rb to generation 1/);
    expect(r.stderr).toContain("Destroying rb@2.service");
    expect(await state("e2e1", "rb@1.service")).toBe("active");
    expect(unitFile("e2e1", "rb@2.service")).toBe(false);
    const rm = await houston(fleet.consulAddr, dir, "remove", "rb");
    expect(rm.code, rm.stderr).toBe(0);
    expect(unitFile("e2e1", "rb@1.service")).toBe(false);
    expect(await fleet.consul.kvGet(fleet.kv.spec("rb"))).toBeNull();
    const st = await houston(fleet.consulAddr, dir, "status", "rb");
    expect(st.stdout).toContain("stack rb is not deployed");
  });

  it("status does not vouch for hosts whose agent is down", async () => {
    await fleet.shell("e2e3", "systemctl", "stop", "houston-agent.service");
    const st = await eventually("e2e3's agent check to go critical", async () => {
      const r = await localRun("--json", "status", "global");
      const j = JSON.parse(r.stdout) as {
        healthy: boolean;
        stacks: { units: { node: string; agent: string; activeState: string; reportedState: string | null }[] }[];
      };
      const row = j.stacks[0]?.units.find((u) => u.node === "e2e3");
      return row && row.agent === "critical" ? { r, j, row } : null;
    });
    expect(st.r.code).toBe(1);
    expect(st.j.healthy).toBe(false);
    expect(st.row).toMatchObject({ activeState: "unknown", reportedState: "active" });
    const text = await localRun("status", "global");
    expect(text.stdout).toMatch(/e2e3 +heartbeat@1\.service +1 +unknown \(agent critical; last reported active\)/);
    // a rollout to that host warns at once and, when it times out, names that host alone and says why
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nglobal-units: [beat:2]\n",
      "units/global/beat.service": "[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nGlobal=true\n",
    });
    const r = await run(dir, "-s", "--timeout", "12", "global");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "WARNING  houston-agent on e2e3 is critical: its units cannot be confirmed until it reports again",
    );
    expect(r.stderr).toMatch(
      /ERROR +beat@2\.service failed on e2e3: timed out after \d+s: beat@2\.service not active yet on e2e3 \(houston-agent on e2e3 is critical\)/,
    );
    expect(await state("e2e1", "beat@2.service")).not.toBe("active"); // restored: removed again
    expect(unitFile("e2e1", "beat@2.service")).toBe(false); // gone, not merely never started
  });
});
