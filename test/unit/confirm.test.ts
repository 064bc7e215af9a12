import { describe, expect, it } from "vitest";
import {
  answerLimitMs,
  decideHealth,
  hostHealth,
  httpErrorAnswer,
  type HostHealth,
} from "../../controller/rollout/confirm.js";
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
      { node: "a", status: "passing", output: "" },
      { node: "b", status: "critical", output: "HTTP GET http://127.0.0.1:80/: connection refused" },
      { node: "c", status: "missing", output: "not registered with tag 2 or version:2 yet" },
    ]);
  });

  it("quotes the service's own check, never the node's, unless the node is what fails", () => {
    const ok = entry("a", "passing", "HTTP GET http://127.0.0.1:80/: 200 OK");
    expect(hostHealth([ok], ["version:2"], ["a"])).toEqual([
      { node: "a", status: "passing", output: "HTTP GET http://127.0.0.1:80/: 200 OK" },
    ]);
    const down = {
      ...ok,
      Checks: ok.Checks.map((c) =>
        c.CheckID === "serfHealth" ? { ...c, Status: "critical", Output: "Agent not live" } : c,
      ),
    };
    expect(hostHealth([down], ["version:2"], ["a"])).toEqual([
      { node: "a", status: "critical", output: "the node is critical in Consul (serfHealth): Agent not live" },
    ]);
  });

  it("accepts the seed's convention: the bare version as a tag, at the machine's own address", () => {
    const seed = (node: string, addr: string, address?: string, tags = ["2"]): HealthEntry => {
      const e = entry(node, "passing", "", tags);
      return { ...e, Node: { ...e.Node, Address: addr }, Service: { ...e.Service, ID: "web-1", Address: address } };
    };
    const hosts = hostHealth(
      [
        seed("a", "10.0.0.1", "10.0.0.1"),
        seed("b", "10.0.0.2"), // no ServiceAddress: Consul uses the node's
        seed("c", "10.0.0.3", "10.0.0.9"), // another machine's address: not this host's instance
        seed("d", "10.0.0.4", "10.0.0.4", ["1"]), // another version
      ],
      ["version:2"],
      ["a", "b", "c", "d"],
      "2",
    );
    expect(hosts.map((h) => h.status)).toEqual(["passing", "passing", "missing", "missing"]);
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
      title: "missing (not registered yet) for less than a unit's time: waiting",
      steps: [
        [0, [h("a", "missing")]],
        [9_999, [h("a", "missing")]],
      ],
      want: "waiting",
    },
    {
      title: "never registered for a unit's time (-d × -m): failed, not after the whole --timeout",
      steps: [
        [0, [h("a", "missing", "not registered with tag 2 or version:2 yet")]],
        [10_000, [h("a", "missing", "not registered with tag 2 or version:2 yet")]],
      ],
      want: "failed a not registered with tag 2 or version:2 yet",
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

describe("a check that answers with an HTTP error", () => {
  const h = (status: string, output: string): HostHealth => ({ node: "a", status, output });
  it("is told from one that does not answer, by Consul's output", () => {
    expect(httpErrorAnswer("HTTP GET http://127.0.0.1:8093/health: 404 Not Found Output: <html>nope</html>")).toBe(
      "HTTP GET http://127.0.0.1:8093/health: 404 Not Found",
    );
    expect(httpErrorAnswer("HTTP GET http://127.0.0.1:8093/: 503 Service Unavailable")).toBe(
      "HTTP GET http://127.0.0.1:8093/: 503 Service Unavailable",
    );
    expect(httpErrorAnswer("HTTP GET http://127.0.0.1:8093/: 200 OK Output: fine")).toBeNull();
    expect(
      httpErrorAnswer('Get "http://127.0.0.1:8093/": dial tcp 127.0.0.1:8093: connect: connection refused'),
    ).toBeNull();
    expect(httpErrorAnswer("")).toBeNull();
  });
  it("waits 3 runs of the check (at least a second each)", () => {
    expect(answerLimitMs("2s")).toBe(6000);
    expect(answerLimitMs("500ms")).toBe(3000);
    expect(answerLimitMs("1m")).toBe(180_000);
  });
  const cases: { title: string; steps: [number, HostHealth][]; want: string }[] = [
    {
      title: "404 for 3 runs: failed at once, not after -d × -m, quoting the answer",
      steps: [
        [0, h("critical", "HTTP GET http://127.0.0.1:1/h: 404 Not Found Output: x")],
        [6_000, h("critical", "HTTP GET http://127.0.0.1:1/h: 404 Not Found Output: x")],
      ],
      want: "failed answered",
    },
    {
      title: "404 while starting, then 200: passing",
      steps: [
        [0, h("critical", "HTTP GET http://127.0.0.1:1/h: 404 Not Found")],
        [2_000, h("passing", "HTTP GET http://127.0.0.1:1/h: 200 OK")],
      ],
      want: "passing",
    },
    {
      title: "refused connections are no answer: -d × -m still bounds them",
      steps: [
        [0, h("critical", "dial tcp: connection refused")],
        [6_000, h("critical", "dial tcp: connection refused")],
      ],
      want: "waiting",
    },
    {
      title: "refused, then 404: the answers count from the first 404",
      steps: [
        [0, h("critical", "dial tcp: connection refused")],
        [4_000, h("critical", "HTTP GET http://127.0.0.1:1/h: 404 Not Found")],
        [9_000, h("critical", "HTTP GET http://127.0.0.1:1/h: 404 Not Found")],
      ],
      want: "waiting",
    },
  ];
  for (const c of cases) {
    it(c.title, () => {
      const since = new Map<string, number>();
      const answers = { since: new Map<string, number>(), limitMs: 6_000 };
      let d = decideHealth([], since, 0, 75_000, answers);
      for (const [now, host] of c.steps) d = decideHealth([host], since, now, 75_000, answers);
      expect(d.kind === "failed" ? `failed${d.answered ? " answered" : ""}` : d.kind).toBe(c.want);
    });
  }
});
