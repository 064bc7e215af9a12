/**
 * The agent as it runs on Flatcar / Fedora CoreOS: from its OCI image (npm run image: built from
 * scratch with Node 24 LTS, no registry), started by systemd/houston-agent-container.service
 * inside a real systemd test host, against that host's D-Bus, unit dir and file root. A stack
 * deployed through it runs and its files are in place.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TESTHOST_PODMAN } from "../harness/hosts.js";
import { LocalFleet } from "../harness/local-fleet.js";
import { configDir, houston } from "../helpers/cli.js";
import { ROOT } from "../harness/paths.js";
import { eventually } from "../helpers/specs.js";

const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
let fleet: LocalFleet;
let archive = "";
beforeAll(async () => {
  // builds the image (Node 24 and the rebuilt native module are cached under .state/image)
  archive =
    execFileSync("bash", [join(ROOT, "scripts", "build-image.sh")], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .at(-1) ?? "";
  fleet = await LocalFleet.start({ hosts: [{ name: "img1", meta: { role: "web" } }], agentImage: join(ROOT, archive) });
}, 900_000);
afterAll(async () => fleet?.stop());

const podman = ["env", "-u", "CONTAINERS_CONF", ...TESTHOST_PODMAN];

describe("the agent from its image", () => {
  it("is an OCI archive of this version, and the unit's default image matches it", () => {
    expect(archive).toBe(`dist/houston-agent-${version}.oci.tar`);
    expect(existsSync(join(ROOT, archive))).toBe(true);
    expect(readFileSync(join(ROOT, "systemd", "houston-agent-container.service"), "utf8")).toContain(
      `HOUSTON_IMAGE=localhost/houston-agent:${version}`,
    );
  });

  it("runs under systemd in the host, on Node 24, and reports its version", async () => {
    const ps = await fleet.shell("img1", ...podman, "ps", "--format", "{{.Names}} {{.Image}}");
    expect(ps).toContain(`houston-agent localhost/houston-agent:${version}`);
    // podman's exec can fail now and then on a loaded machine (runc: "read init-p: connection reset
    // by peer" while the container runs on): asked again until it answers
    const node = await eventually("node --version in the agent's container", () =>
      fleet.shell("img1", ...podman, "exec", "houston-agent", "/usr/bin/node", "--version"),
    );
    expect(node.trim()).toMatch(/^v24\./);
    const rec = JSON.parse((await fleet.consul.kvGet(fleet.kv.agent("img1")))!.value.toString()) as { version: string };
    expect(rec.version).toBe(version);
  });

  it("deploys a stack with files through the containerized agent", async () => {
    const dir = configDir({
      "manifest.yaml": "environments:\n  test: {}\nshared-stacks:\n  boxed: [app:1]\n",
      "units/shared/app.service": "[Service]\nExecStart=/bin/sh -c 'cat /etc/boxed/motd; exec sleep infinity'\n",
      "files/standalone/boxed.yaml": "- {path: /etc/boxed/motd, content: hello-from-the-image, permissions: '0640'}\n",
    });
    const r = await houston(fleet.consulAddr, dir, "standalone", "boxed");
    expect(r.code, r.stderr).toBe(0);
    expect(await fleet.unitState("img1", "boxed-app@1.service")).toBe("active");
    expect((await fleet.shell("img1", "cat", "/etc/boxed/motd")).trim()).toBe("hello-from-the-image");
    expect((await fleet.shell("img1", "stat", "-c", "%a %U", "/etc/boxed/motd")).trim()).toBe("640 root");
    // a container on a busy CI machine beside the whole suite: no speed is assumed (one CI run needed > 60 s)
  }, 300_000);
});
