import { describe, expect, it } from "vitest";
import { decideHealth, hostHealth, type HostHealth } from "../../controller/rollout/confirm.js";
import type { HealthEntry } from "../../shared/consul.js";

const entry = (node: string, status: string, output = "", tags = ["version:2"]): HealthEntry => ({
  Node: { Node: node, Address: "10.0.0.1", Meta: {} },
  Service: { ID: `houston:web@2.service`, Service: "web", Tags: tags, Port: 80 },
  Checks: [
    { CheckID: "serfHealth", Status: "passing", Output: "Agent alive and reachable", ServiceID: "" },
    { CheckID: "service:houston:web@2.service", Status: status, Output: output, ServiceID: "houston:web@2.service" },
  ],
});

describe("hostHealth", () => {
  it("takes the worst check per target node and says which are not registered yet", () => {
    const hosts = hostHealth(
      [
        entry("a", "passing"),
        entry("b", "critical", "HTTP GET http://127.0.0.1:80/: connection refused"),
        entry("c", "passing", "", ["version:1"]),
      ],
      ["version:2"],
      ["a", "b", "c"],
    );
    expect(hosts).toEqual([
      { node: "a", status: "passing", output: "Agent alive and reachable" },
      { node: "b", status: "critical", output: "HTTP GET http://127.0.0.1:80/: connection refused" },
      { node: "c", status: "missing", output: "not registered with these tags yet" },
    ]);
  });
});

describe("decideHealth", () => {
  const h = (node: string, status: string, output = ""): HostHealth => ({ node, status, output });
  const cases: { title: string; steps: [number, HostHealth[]][]; want: string }[] = [
    { title: "all passing", steps: [[0, [h("a", "passing"), h("b", "passing")]]], want: "passing" },
    {
      title: "critical briefly (starting up), then passing",
      steps: [
        [0, [h("a", "critical")]],
        [5_000, [h("a", "passing")]],
      ],
      want: "passing",
    },
    {
      title: "critical, not yet for a unit's time: waiting",
      steps: [
        [0, [h("a", "critical")]],
        [9_999, [h("a", "critical")]],
      ],
      want: "waiting",
    },
    {
      title: "critical for a unit's time: failed with its output",
      steps: [
        [0, [h("a", "critical", "refused")]],
        [10_000, [h("a", "critical", "refused")]],
      ],
      want: "failed a refused",
    },
    {
      title: "a warning in between restarts the count",
      steps: [
        [0, [h("a", "critical")]],
        [6_000, [h("a", "warning")]],
        [12_000, [h("a", "critical")]],
        [20_000, [h("a", "critical")]],
      ],
      want: "waiting",
    },
    {
      title: "missing (not registered yet) never fails by itself",
      steps: [
        [0, [h("a", "missing")]],
        [60_000, [h("a", "missing")]],
      ],
      want: "waiting",
    },
  ];
  for (const c of cases) {
    it(c.title, () => {
      const since = new Map<string, number>();
      let d = decideHealth([], since, 0, 10_000);
      for (const [now, hosts] of c.steps) d = decideHealth(hosts, since, now, 10_000);
      expect(d.kind === "failed" ? `failed ${d.host.node} ${d.host.output}` : d.kind).toBe(c.want);
    });
  }
});
