import { describe, expect, it } from "vitest";
import { argvGrammar, normalizeArgv } from "../../controller/argv.js";
import { buildProgram } from "../../controller/cli.js";

const grammar = argvGrammar(buildProgram());

describe("normalizeArgv (the seed's command lines)", () => {
  const cases: [string, string, string][] = [
    ["already in commander's order", "-c cfg -e test service web 2 -g blue", "-c cfg -e test service web 2 -g blue"],
    [
      "deploy flags before the command move after it",
      "-c cfg -e test -g blue -s service web 2",
      "-c cfg -e test service -g blue -s web 2",
    ],
    [
      "values of moved flags move with them, inline or not",
      "-e test --group=blue -d 2 --max-tries 3 global",
      "-e test global --group=blue -d 2 --max-tries 3",
    ],
    [
      "the seed's bare NAME VERSION means service",
      "-c config -e test-us-east-1 example 7b7d061b",
      "-c config -e test-us-east-1 service example 7b7d061b",
    ],
    [
      "global options stay where they are",
      "--consul http://x:8500 --json -v status example",
      "--consul http://x:8500 --json -v status example",
    ],
    ["a lone unknown word is left for commander to reject", "-e test statsu", "-e test statsu"],
    ["flags only", "-n --remove", "-n --remove"],
  ];
  for (const [title, input, want] of cases)
    it(title, () => expect(normalizeArgv(input.split(" "), grammar).join(" ")).toBe(want));
});

describe("argvGrammar (read from the commander program, declared once)", () => {
  it("has every command, commander's help among them", () =>
    expect([...grammar.commands].sort()).toEqual(
      [
        "acl",
        "adopt",
        "host-config",
        "global",
        "help",
        "history",
        "keygen",
        "nodes",
        "plan",
        "remove",
        "rollback",
        "service",
        "standalone",
        "status",
      ].sort(),
    ));
  it("tells options that take a value from flags, short and long names alike", () => {
    expect(grammar.globalWithValue.has("-e") && grammar.globalWithValue.has("--signing-key")).toBe(true);
    expect(grammar.globalWithValue.has("--json")).toBe(false);
    expect([...grammar.deployWithValue]).toEqual(expect.arrayContaining(["-g", "--group", "-d", "--min-healthy"]));
    expect([...grammar.deployFlags].sort()).toEqual(
      [
        "--force-unlock",
        "--no-dependencies",
        "--no-removal",
        "--remove",
        "--skip-consul",
        "--trust-kv-as-is",
        "-n",
        "-s",
      ].sort(),
    );
  });
});
