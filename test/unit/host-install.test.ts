/**
 * The files that install the agent on a host stay consistent with the package: the image they
 * name is this version's, the Butane config parses and names files that exist.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const ROOT = join(import.meta.dirname, "..", "..");
const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
const read = (f: string) => readFileSync(join(ROOT, "systemd", f), "utf8");

describe("host install files", () => {
  it("name this version's image", () => {
    for (const f of ["houston-agent-container.service", "houston-agent.container"])
      expect(read(f)).toContain(`localhost/houston-agent:${version}`);
    expect(read("houston-agent.bu")).toContain(`houston-agent-${version}.oci.tar`);
  });
  it("the Butane config is an fcos config whose local files are in systemd/ (or made by keygen)", () => {
    const bu = parse(read("houston-agent.bu")) as {
      variant: string;
      version: string;
      storage: { files: { path: string; contents: { local?: string } }[] };
    };
    expect(bu.variant).toBe("fcos");
    const locals = bu.storage.files.flatMap((f) => (f.contents.local ? [f.contents.local] : []));
    expect(locals).toEqual(["ci.pub", "houston-agent.container"]);
    expect(bu.storage.files.map((f) => f.path)).toContain("/etc/containers/systemd/houston-agent.container");
  });
  it("the container units mount what the agent needs and run it without the journal", () => {
    for (const f of ["houston-agent-container.service", "houston-agent.container"]) {
      const t = read(f);
      for (const m of [
        "/run/dbus/system_bus_socket:/run/dbus/system_bus_socket",
        "/etc/systemd/system:/etc/systemd/system",
        "/var/lib/houston:/var/lib/houston",
        "/:/host",
      ])
        expect(t).toContain(m);
      expect(t).toContain("--no-journal");
    }
  });
  it("each agent line reaches the journal once: passthrough, never podman's journald or file log beside it", () => {
    const plain = read("houston-agent-container.service");
    const run = plain.slice(plain.indexOf("ExecStart=/usr/bin/podman"));
    expect(run.split("\n")[0]).toContain(" run --rm --name houston-agent --network host --log-driver=passthrough ");
    expect(plain).not.toMatch(/--log-driver[= ](journald|k8s-file|json-file)/);
    // Quadlet's own default is passthrough; a LogDriver= naming another driver would bring the copy back
    const quadlet = read("houston-agent.container");
    expect(quadlet).not.toMatch(/^LogDriver=(?!passthrough)/m);
    expect(quadlet).not.toMatch(/^PodmanArgs=.*--log-driver/m);
  });
});
