/**
 * `houston plan` against a live stack, through the built CLI and a real Consul: unchanged units in
 * one line, a changed unit as a unified diff of its text, a new version as a diff against the one
 * it replaces, the replaced one marked; `--full` prints every unit's whole text.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDeploymentInputs } from "../../controller/config/load.js";
import { planDeployment, type DeploymentRequest } from "../../controller/plan/plan-deployment.js";
import { Consul } from "../../shared/consul.js";
import { KvLayout } from "../../shared/kv-layout.js";
import { configDir, houston, writeConfig } from "../helpers/cli.js";
import { publish } from "../helpers/specs.js";
import { startConsul, type TestConsul } from "../harness/consul-dev.js";

let consul: TestConsul;
const kv = new KvLayout("houston/");
const dir = configDir({
  "manifest.yaml": "environments:\n  test: {}\nshared-units:\n  hello: [cache:1, queue:2]\n",
  "units/shared/cache.service": "[Unit]\nDescription=cache %i\n\n[Service]\nExecStart=/bin/sleep infinity\n",
  "units/shared/queue.service": "[Unit]\nDescription=queue %i\n\n[Service]\nExecStart=/bin/sleep 100\n",
  "units/service/hello.service": "[Unit]\nDescription=hello %i\n\n[Service]\nExecStart=/bin/echo hello\n",
});
const req: DeploymentRequest = {
  environment: "test",
  type: "service",
  name: "hello",
  version: "1",
  group: null,
  dependencies: true,
};

beforeAll(async () => {
  consul = await startConsul();
  // live: hello 1 as planned from this config; then the config changes the queue's text
  const plan = planDeployment(loadDeploymentInputs(dir, req), req);
  await publish(new Consul({ addr: consul.addr, token: "" }), kv, "hello", plan.units);
  writeConfig(dir, {
    "units/shared/queue.service": "[Unit]\nDescription=queue %i\n\n[Service]\nExecStart=/bin/sleep 200\n",
  });
});
afterAll(async () => consul?.stop());

describe("plan against a live stack", () => {
  it("shows what changes: unchanged in one line, changed and replacing units as diffs, removed marked", async () => {
    const r = await houston(consul.addr, dir, "plan", "service", "hello", "2");
    expect(r.code, r.stderr).toBe(0);
    const all = `${r.stderr}\n${r.stdout}`;
    expect(r.stderr).toMatch(/Unit hello-cache@1\.service \(dependency, unchanged\)/);
    expect(all).not.toContain("Description=cache");
    expect(r.stderr).toMatch(/Unit hello-queue@2\.service \(dependency, changed\)/);
    expect(r.stdout).toMatch(
      /--- hello-queue@2\.service \(generation 1\)\n +\+\+\+ hello-queue@2\.service \(this plan\)\n +@@ .* @@\n[\s\S]*\n +-ExecStart=\/bin\/sleep 100\n +\+ExecStart=\/bin\/sleep 200/,
    );
    expect(r.stderr).toMatch(/Unit hello@2\.service \(service, new, replaces hello@1\.service\)/);
    expect(r.stdout).toMatch(/the same text as hello@1\.service \(generation 1\)/); // %i: the version is not in the text
    expect(r.stdout).not.toContain("placement:");
    expect(r.stderr).toMatch(/Would remove after confirmation: hello@1\.service/);
    expect(r.stderr).toMatch(/--full shows every unit's text/);
  });

  it("--full prints every unit's whole text", async () => {
    const r = await houston(consul.addr, dir, "plan", "service", "hello", "2", "--full");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Description=cache");
    expect(r.stdout).not.toContain("+++ ");
  });
});
