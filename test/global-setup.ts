/**
 * Every temporary file and directory of a test run goes under one directory (TMPDIR for the test
 * workers and what they start), removed when the run ends: helpers and tests make config dirs,
 * keys and archives by the hundred.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "houston-test-"));
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
