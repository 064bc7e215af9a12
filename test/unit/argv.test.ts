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
    [
      "the bare form with options after it (a flag's value is not a word)",
      "-c config -e test hello 4 --min-healthy 3",
      "-c config -e test service hello 4 --min-healthy 3",
    ],
    [
      "the bare form with options around it, the seed's and Houston's",
      "-c config -d 2 -e test hello 4 -m 3 --no-dependencies -s -v --consul http://x:1",
      "-c config -e test service -d 2 hello 4 -m 3 --no-dependencies -s -v --consul http://x:1",
    ],
    [
      "the bare form with inline values",
      "--environment=test -d3 hello 4 --max-tries=3",
      "--environment=test service -d3 hello 4 --max-tries=3",
    ],
    ["the bare form with --remove", "-e test hello 4 --remove -n", "-e test service hello 4 --remove -n"],
    [
      "Houston's options after the command stay there (commander reads them)",
      "service web 2 -e test -c cfg --json -d 1",
      "service web 2 -e test -c cfg --json -d 1",
    ],
    ["global and standalone with the seed's flags", "-n -e test global -d 1 -m 2 -s", "-e test global -n -d 1 -m 2 -s"],
    [
      "standalone with the deploy flags before and after",
      "-e test --no-dependencies standalone db --remove",
      "-e test standalone --no-dependencies db --remove",
    ],
    [
      "plan with deploy flags before its subcommand",
      "-e test plan -g blue service web 2",
      "-e test plan service -g blue web 2",
    ],
    [
      "a value that looks like a command stays a value",
      "-e status -c plan hello 4",
      "-e status -c plan service hello 4",
    ],
    ["three words are not the bare form", "-e test hello 4 5", "-e test hello 4 5"],
    ["a command's own option before it moves after it", "-c cfg -y remove web", "-c cfg remove -y web"],
    ["commander's --help before a command stays the program's", "--help service", "--help service"],
    [
      "another command's option value is not a word (plan --scheduler fleet service web 2)",
      "-e test plan --scheduler fleet -g blue service web 2",
      "-e test plan service --scheduler fleet -g blue web 2",
    ],
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
