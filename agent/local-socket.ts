/**
 * The agent's local socket (a unix socket, mode 0600: root on this host only). fleet's file unit
 * for a fleet-scheduled stack asks here for its archive (POST /v1/archives/<stack>/<sha256>) and
 * waits: the agent checks the request against the signed spec it accepted, installs the files
 * with all its safety rules (it stays the only writer of files) and answers once they are in
 * place, or with an error the unit's journal shows.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { dirname } from "node:path";
import { ARCHIVE_REQUEST_RE, fleetArchiveMetadata, isFleetStack, metadataMatches } from "../shared/fleet-mirror.js";
import type { StackSpec } from "../shared/spec.js";

export type ArchiveAnswer = { status: 200 | 403 | 404 | 500 | 504; message: string };

export interface ArchiveRequests {
  /** resolves when the archive is installed here, or with why it is not */
  requestArchive(stack: string, sha: string, signal: AbortSignal): Promise<ArchiveAnswer>;
}

export function serveLocalSocket(path: string, agent: ArchiveRequests, log: (m: string) => void): Server | null {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    // the agent runs on without it: only fleet's file units need it, and they say so when it is missing
    log(`no local socket at ${path}: ${String(err)}`);
    return null;
  }
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path); // left by an agent that was killed
  } catch {
    /* none */
  }
  const server = createServer((req, res) => {
    const m = ARCHIVE_REQUEST_RE.exec(req.url ?? "");
    const answer = (status: number, message: string): void => {
      res.writeHead(status, { "Content-Type": "text/plain" });
      res.end(`${message}\n`);
    };
    if (req.method !== "POST" || !m?.[1] || !m[2])
      return answer(404, "houston-agent: only POST /v1/archives/<stack>/<sha256> is served here");
    const ac = new AbortController();
    res.on("close", () => ac.abort());
    const [stack, sha] = [m[1], m[2]];
    agent.requestArchive(stack, sha, ac.signal).then(
      (a) => {
        if (a.status !== 200) log(`local request for archive ${sha.slice(0, 12)} of ${stack}: ${a.message}`);
        answer(a.status, a.message);
      },
      (err: unknown) => answer(500, String(err)),
    );
  });
  server.listen(path, () => chmodSync(path, 0o600));
  server.on("error", (err) => log(`local socket ${path}: ${err.message}`));
  return server;
}

/**
 * What to answer a file unit's request now (pure), or null to wait for the next pass: the spec
 * may not have reached this agent yet, or the files are being installed.
 */
export function archiveRequestAnswer(input: {
  specs: StackSpec[];
  installed: ReadonlyMap<string, string>;
  errors: readonly string[];
  node: string;
  meta: Record<string, string>;
  stack: string;
  sha: string;
}): ArchiveAnswer | null {
  const spec = input.specs.find((s) => s.stack === input.stack);
  const unit = spec?.units.find((u) => u.role === "archive" && u.archive === input.sha);
  if (!spec || !unit || !isFleetStack(spec)) return null;
  if (!metadataMatches(fleetArchiveMetadata(unit), input.meta))
    return {
      status: 403,
      message: `archive ${input.sha.slice(0, 12)} of ${input.stack} is not meant for ${input.node} (its metadata does not match the spec's)`,
    };
  if (input.installed.get(input.sha) === input.stack)
    return { status: 200, message: `archive ${input.sha.slice(0, 12)} of ${input.stack} is installed` };
  if (input.errors.length) return { status: 500, message: input.errors.join("; ") };
  return null;
}
