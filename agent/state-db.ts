/**
 * Opening the agent's SQLite state (state.ts): the directory 0700 and the files 0600 before SQLite
 * opens them, the tables, and what an older agent's state lacks added.
 */
import Database from "better-sqlite3";
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { AgentConfigError } from "../shared/errors.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS specs (stack TEXT PRIMARY KEY, body TEXT NOT NULL, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS units (name TEXT PRIMARY KEY, stack TEXT NOT NULL, hash TEXT NOT NULL, started_hash TEXT, service_id TEXT, started_at INTEGER);
CREATE TABLE IF NOT EXISTS archives (sha TEXT PRIMARY KEY, stack TEXT NOT NULL, installed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, archive TEXT NOT NULL, kind TEXT NOT NULL, stack TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS applied (stack TEXT PRIMARY KEY, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accepted (stack TEXT PRIMARY KEY, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS boot (id INTEGER PRIMARY KEY CHECK (id = 1), mark TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS placements (stack TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_services (name TEXT PRIMARY KEY, stack TEXT NOT NULL, service_id TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identity (id INTEGER PRIMARY KEY CHECK (id = 1), node TEXT NOT NULL, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reload_pending (id INTEGER PRIMARY KEY CHECK (id = 1));
CREATE TABLE IF NOT EXISTS ports (unit TEXT PRIMARY KEY, port INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS taken_originals (path TEXT PRIMARY KEY, stack TEXT NOT NULL, data BLOB NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL);
`;

/**
 * Makes the state directory 0700 and the database file 0600 before SQLite opens it (SQLite gives
 * its -wal and -shm files the database's mode); modes an older agent left looser are tightened.
 * A shared sticky directory (/tmp) is refused rather than made private.
 */
function makePrivate(file: string): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (st.mode & 0o1000)
    throw new AgentConfigError(
      `state directory ${dir} is shared (mode ${(st.mode & 0o7777).toString(8)}): give the agent a directory of its own (--state-dir)`,
    );
  chmodSync(dir, 0o700);
  const fd = openSync(file, "a", 0o600);
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  for (const extra of [`${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    try {
      chmodSync(extra, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

/** The state database at file (":memory:" for tests), private, with every table (then migrateStateDb). */
export function openStateDb(file: string): Database.Database {
  if (file !== ":memory:") makePrivate(file);
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(SCHEMA);
  return db;
}

/**
 * State written by an older agent: files carry their stack since stacks may not take over each
 * other's files; units, when the agent last started them. `prepare` is AgentState's cache of
 * statements (a statement finalized by the garbage collector crashed Node 24's better-sqlite3).
 */
export function migrateStateDb(db: Database.Database, prepare: (sql: string) => Database.Statement): void {
  const unitCols = prepare("SELECT name FROM pragma_table_info('units')").all() as { name: string }[];
  if (!unitCols.some((c) => c.name === "started_at")) db.exec("ALTER TABLE units ADD COLUMN started_at INTEGER");
  const cols = prepare("SELECT name FROM pragma_table_info('files')").all() as { name: string }[];
  if (!cols.some((c) => c.name === "stack")) {
    db.exec("ALTER TABLE files ADD COLUMN stack TEXT NOT NULL DEFAULT ''");
    db.exec("UPDATE files SET stack = COALESCE((SELECT stack FROM archives WHERE archives.sha = files.archive), '')");
  }
}
