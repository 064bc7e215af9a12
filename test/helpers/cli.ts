/** Runs the built houston CLI as a user would. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ROOT } from "../harness/paths.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function startCli(
  consul: string,
  configDir: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(
    process.execPath,
    [join(ROOT, "dist", "houston.js"), "-c", configDir, "-e", "test", "--consul", consul, ...args],
    { stdio: ["ignore", "pipe", "pipe"], env },
  );
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) =>
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })),
  );
  return { child, done };
}

export function houston(consul: string, configDir: string, ...args: string[]): Promise<CliResult> {
  return startCli(consul, configDir, args).done;
}

/** A Houston config dir in a temp folder; `env test`. */
export function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "houston-e2e-"));
  writeConfig(dir, files);
  return dir;
}

export function writeConfig(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

/** `houston acl bootstrap-tokens` with a management token: role → secret. */
export async function bootstrapTokens(
  consul: string,
  dir: string,
  master: string,
  nodes: string[],
): Promise<Record<string, string>> {
  const r = await houston(
    consul,
    dir,
    "--token",
    master,
    "--json",
    "acl",
    "bootstrap-tokens",
    ...nodes.flatMap((n) => ["--node", n]),
  );
  if (r.code !== 0) throw new Error(`acl bootstrap-tokens failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { tokens: { role: string; secretId: string }[] };
  return Object.fromEntries(out.tokens.map((t) => [t.role, t.secretId]));
}
