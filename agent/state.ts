/**
 * The agent's own state in SQLite: the last valid spec of each stack (so it keeps running what it
 * has while Consul is away), which unit files and archive files Houston created (ownership: nothing
 * else is ever touched), what the original Houston's files held when a deploy took them over,
 * which content each unit was last started with, applied generations, the last report written per
 * stack, and the port chosen for each unit with ServicePort=auto (agent/ports.ts). Survives
 * restarts. It holds every spec of the fleet (other hosts' file contents too): state-db.ts opens it
 * private (directory 0700, database files 0600, whatever the umask) and migrates an older agent's.
 */
import Database from "better-sqlite3";
import { UnitRefusedError } from "../shared/errors.js";
import { PlacementDocSchema, type PlacementDoc } from "../shared/schedule.js";
import { StackSpecSchema, decodeJson, type StackSpec } from "../shared/spec.js";
import { ordinal } from "../shared/order.js";
import { migrateStateDb, openStateDb } from "./state-db.js";

export interface OwnedUnit {
  name: string;
  stack: string;
  /** sha256 of the text Houston wrote */
  hash: string;
  /** hash of the content the unit was last started with (null: never started by Houston) */
  startedHash: string | null;
  /** Consul service ID Houston registered for it, if any */
  serviceId: string | null;
  /** when the agent last asked systemd to start it (ms, wall clock); absent: not known */
  startedAt?: number;
}

export interface OwnedFile {
  path: string;
  archive: string;
  /** taken: a file the original Houston wrote that a deploy of its stack replaced (never deleted) */
  kind: "file" | "dir" | "taken";
}

/** a file's content, mode and owner as the original Houston left it (see keepOriginal) */
export interface OriginalFile {
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

export class AgentState {
  private readonly db: Database.Database;
  /** specs and placements as last read or written (validated once, not on every pass) */
  private specCache: StackSpec[] | null = null;
  private placementCache: Map<string, PlacementDoc> | null = null;
  /** changes whenever the specs or placements do (what this host should run is derived from them) */
  revision = 0;
  /**
   * Prepared once and reused: preparing on every call made garbage statements, and better-sqlite3
   * finalizing one during garbage collection crashed the agent on Node 24 (an assertion in
   * node::RemoveEnvironmentCleanupHook, seen in the image test).
   */
  private readonly statements = new Map<string, Database.Statement>();

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  constructor(file: string) {
    this.db = openStateDb(file);
    migrateStateDb(this.db, (sql) => this.stmt(sql));
  }

  close(): void {
    this.db.close();
  }

  // ---- cached desired specs -------------------------------------------------------------
  specs(): StackSpec[] {
    if (this.specCache) return this.specCache;
    const rows = this.stmt("SELECT stack, body FROM specs ORDER BY stack").all() as {
      stack: string;
      body: string;
    }[];
    this.specCache = rows.map((r) => decodeJson(StackSpecSchema, `agent state specs/${r.stack}`, r.body));
    return this.specCache;
  }
  /** Replace the cached set of specs (one transaction). */
  replaceSpecs(specs: StackSpec[]): void {
    this.db.transaction(() => {
      this.stmt("DELETE FROM specs").run();
      const ins = this.stmt("INSERT INTO specs (stack, body, generation) VALUES (?, ?, ?)");
      for (const s of specs) ins.run(s.stack, JSON.stringify(s), s.generation);
    })();
    this.specCache = [...specs].sort((a, b) => ordinal(a.stack, b.stack));
    this.revision++;
  }

  // ---- cached placements (the scheduler's, so that a host cut off keeps what it runs) -----
  placements(): Map<string, PlacementDoc> {
    if (this.placementCache) return this.placementCache;
    const rows = this.stmt("SELECT stack, body FROM placements ORDER BY stack").all() as {
      stack: string;
      body: string;
    }[];
    this.placementCache = new Map(
      rows.map((r) => [r.stack, decodeJson(PlacementDocSchema, `agent state placements/${r.stack}`, r.body)]),
    );
    return this.placementCache;
  }
  replacePlacements(docs: PlacementDoc[]): void {
    this.db.transaction(() => {
      this.stmt("DELETE FROM placements").run();
      const ins = this.stmt("INSERT INTO placements (stack, body) VALUES (?, ?)");
      for (const d of docs) ins.run(d.stack, JSON.stringify(d));
    })();
    this.placementCache = new Map(docs.map((d) => [d.stack, d]));
    this.revision++;
  }

  // ---- units ------------------------------------------------------------------------------
  units(): OwnedUnit[] {
    const rows = this.stmt(
      "SELECT name, stack, hash, started_hash, service_id, started_at FROM units ORDER BY rowid",
    ).all() as {
      name: string;
      stack: string;
      hash: string;
      started_hash: string | null;
      service_id: string | null;
      started_at: number | null;
    }[];
    return rows.map((r) => ({
      name: r.name,
      stack: r.stack,
      hash: r.hash,
      startedHash: r.started_hash,
      serviceId: r.service_id,
      ...(r.started_at !== null ? { startedAt: r.started_at } : {}),
    }));
  }
  /**
   * Record ownership before the file is written: a crash in between leaves a unit we know is ours.
   * A unit another stack owns is never handed over.
   */
  claimUnit(name: string, stack: string, hash: string): void {
    const res = this.stmt(
      "INSERT INTO units (name, stack, hash) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET hash = excluded.hash WHERE units.stack = excluded.stack",
    ).run(name, stack, hash);
    if (res.changes === 0)
      throw new UnitRefusedError(
        `unit ${name} is owned by stack ${this.unitOwner(name) ?? "?"}; refusing to take it over`,
      );
  }
  unitOwner(name: string): string | null {
    const row = this.stmt("SELECT stack FROM units WHERE name = ?").get(name) as { stack: string } | undefined;
    return row?.stack ?? null;
  }
  /** `atMs`: when the agent asked systemd to start it (wall clock), for its journal lines */
  markStarted(name: string, hash: string, atMs = Date.now()): void {
    this.stmt("UPDATE units SET started_hash = ?, started_at = ? WHERE name = ?").run(hash, atMs, name);
  }
  setServiceId(name: string, id: string | null): void {
    this.stmt("UPDATE units SET service_id = ? WHERE name = ?").run(id, name);
  }
  /** the unit is gone: so is the port it held (ServicePort=auto) */
  forgetUnit(name: string): void {
    this.db.transaction(() => {
      this.stmt("DELETE FROM units WHERE name = ?").run(name);
      this.stmt("DELETE FROM ports WHERE unit = ?").run(name);
    })();
  }

  // ---- ports chosen for units with ServicePort=auto or a range (agent/ports.ts) -------------
  /** unit → port; a port is held by one unit at most (UNIQUE) */
  ports(): Map<string, number> {
    const rows = this.stmt("SELECT unit, port FROM ports").all() as { unit: string; port: number }[];
    return new Map(rows.map((r) => [r.unit, r.port]));
  }
  /** throws when another unit holds `port` (never taken from it) */
  setPort(unit: string, port: number): void {
    this.stmt("INSERT INTO ports (unit, port) VALUES (?, ?) ON CONFLICT(unit) DO UPDATE SET port = excluded.port").run(
      unit,
      port,
    );
  }
  releasePort(unit: string): void {
    this.stmt("DELETE FROM ports WHERE unit = ?").run(unit);
  }

  // ---- services of units fleet runs here (fleet-scheduled stacks) ---------------------------------
  fleetServices(): Map<string, { stack: string; serviceId: string; hash: string }> {
    const rows = this.stmt("SELECT name, stack, service_id, hash FROM fleet_services").all() as {
      name: string;
      stack: string;
      service_id: string;
      hash: string;
    }[];
    return new Map(rows.map((r) => [r.name, { stack: r.stack, serviceId: r.service_id, hash: r.hash }]));
  }
  setFleetService(name: string, stack: string, serviceId: string, hash: string): void {
    this.stmt(
      "INSERT INTO fleet_services (name, stack, service_id, hash) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET stack = excluded.stack, service_id = excluded.service_id, hash = excluded.hash",
    ).run(name, stack, serviceId, hash);
  }
  forgetFleetService(name: string): void {
    this.stmt("DELETE FROM fleet_services WHERE name = ?").run(name);
  }

  // ---- archives and files -------------------------------------------------------------------
  installedArchives(): Map<string, string> {
    const rows = this.stmt("SELECT sha, stack FROM archives").all() as { sha: string; stack: string }[];
    return new Map(rows.map((r) => [r.sha, r.stack]));
  }
  fileOwner(path: string): { archive: string; stack: string } | null {
    const row = this.stmt("SELECT archive, stack FROM files WHERE path = ?").get(path) as
      { archive: string; stack: string } | undefined;
    return row ?? null;
  }
  /**
   * Claim paths for an archive before writing them. Re-claiming a file from another archive of
   * the same stack is a hand-over (a taken file stays taken); another stack's file is never taken
   * (the caller refuses first).
   */
  claimFiles(archive: string, stack: string, files: { path: string; kind: OwnedFile["kind"] }[]): void {
    const up = this.stmt(
      "INSERT INTO files (path, archive, kind, stack) VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET archive = excluded.archive WHERE files.kind IN ('file', 'taken') AND files.stack = excluded.stack",
    );
    const keepDir = this.stmt(
      "INSERT INTO files (path, archive, kind, stack) VALUES (?, ?, 'dir', ?) ON CONFLICT(path) DO NOTHING",
    );
    this.db.transaction(() => {
      for (const f of files)
        if (f.kind === "dir") keepDir.run(f.path, archive, stack);
        else up.run(f.path, archive, f.kind, stack);
    })();
  }
  filesOf(archive: string): OwnedFile[] {
    return this.stmt("SELECT path, archive, kind FROM files WHERE archive = ? ORDER BY length(path) DESC, path").all(
      archive,
    ) as OwnedFile[];
  }
  forgetFile(path: string): void {
    this.stmt("DELETE FROM files WHERE path = ?").run(path);
  }
  /**
   * A file taken over from the original Houston whose archive is removed stays where it is, and the
   * stack's: no archive holds it (archive ''), a later archive of the same stack claims it again.
   */
  leaveFile(path: string): void {
    this.stmt("UPDATE files SET archive = '' WHERE path = ? AND kind = 'taken'").run(path);
  }
  markArchiveInstalled(sha: string, stack: string): void {
    this.stmt("INSERT OR REPLACE INTO archives (sha, stack, installed_at) VALUES (?, ?, ?)").run(
      sha,
      stack,
      new Date().toISOString(),
    );
  }
  forgetArchive(sha: string): void {
    this.stmt("DELETE FROM archives WHERE sha = ?").run(sha);
  }
  /**
   * What a file of the original Houston held when a deploy of `stack` took it over: kept until that
   * stack's deploy is confirmed, so that a failed one puts it back.
   */
  keepOriginal(path: string, stack: string, f: OriginalFile): void {
    this.stmt(
      "INSERT OR REPLACE INTO taken_originals (path, stack, data, mode, uid, gid) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(path, stack, f.data, f.mode, f.uid, f.gid);
  }
  originalOf(path: string): OriginalFile | null {
    const row = this.stmt("SELECT data, mode, uid, gid FROM taken_originals WHERE path = ?").get(path) as
      OriginalFile | undefined;
    return row ?? null;
  }
  forgetOriginal(path: string): void {
    this.stmt("DELETE FROM taken_originals WHERE path = ?").run(path);
  }

  // ---- applied generations and reports ---------------------------------------------------------
  applied(): Map<string, number> {
    const rows = this.stmt("SELECT stack, generation FROM applied").all() as {
      stack: string;
      generation: number;
    }[];
    return new Map(rows.map((r) => [r.stack, r.generation]));
  }
  setApplied(stack: string, generation: number | null): void {
    if (generation === null) this.stmt("DELETE FROM applied WHERE stack = ?").run(stack);
    else this.stmt("INSERT OR REPLACE INTO applied (stack, generation) VALUES (?, ?)").run(stack, generation);
  }
  /**
   * The host's boot this state last saw; after a reboot every owned unit counts as not started
   * (systemd forgot them), so each is started again exactly once.
   */
  noteBoot(mark: string): boolean {
    const row = this.stmt("SELECT mark FROM boot WHERE id = 1").get() as { mark: string } | undefined;
    if (row?.mark === mark) return false;
    this.db.transaction(() => {
      if (row) this.stmt("UPDATE units SET started_hash = NULL, started_at = NULL").run();
      this.stmt("INSERT OR REPLACE INTO boot (id, mark) VALUES (1, ?)").run(mark);
    })();
    return row !== undefined;
  }

  /** highest spec generation accepted per stack (kept after a stack is removed: no replays) */
  acceptedGenerations(): Map<string, number> {
    const rows = this.stmt("SELECT stack, generation FROM accepted").all() as {
      stack: string;
      generation: number;
    }[];
    return new Map(rows.map((r) => [r.stack, r.generation]));
  }
  noteAccepted(stack: string, generation: number): void {
    this.stmt(
      "INSERT INTO accepted (stack, generation) VALUES (?, ?) ON CONFLICT(stack) DO UPDATE SET generation = max(generation, excluded.generation)",
    ).run(stack, generation);
  }
  /** node name and metadata last learnt from Consul, for starts while Consul is away */
  identity(): { node: string; meta: Record<string, string> } | null {
    const row = this.stmt("SELECT node, meta FROM identity WHERE id = 1").get() as
      { node: string; meta: string } | undefined;
    if (!row) return null;
    const meta = JSON.parse(row.meta) as unknown;
    if (typeof meta !== "object" || meta === null || Object.values(meta).some((v) => typeof v !== "string"))
      return { node: row.node, meta: {} };
    return { node: row.node, meta: meta as Record<string, string> };
  }
  setIdentity(node: string, meta: Record<string, string>): void {
    this.stmt("INSERT OR REPLACE INTO identity (id, node, meta) VALUES (1, ?, ?)").run(node, JSON.stringify(meta));
  }

  /** a unit file was removed and systemd has not been reloaded since (it may hold the old unit) */
  reloadPending(): boolean {
    return this.stmt("SELECT id FROM reload_pending").get() !== undefined;
  }
  setReloadPending(pending: boolean): void {
    this.stmt(pending ? "INSERT OR IGNORE INTO reload_pending (id) VALUES (1)" : "DELETE FROM reload_pending").run();
  }

  reportKeys(): string[] {
    return (this.stmt("SELECT key FROM reports").all() as { key: string }[]).map((r) => r.key);
  }
  lastReport(key: string): string | null {
    const row = this.stmt("SELECT body FROM reports WHERE key = ?").get(key) as { body: string } | undefined;
    return row?.body ?? null;
  }
  setLastReport(key: string, body: string | null): void {
    if (body === null) this.stmt("DELETE FROM reports WHERE key = ?").run(key);
    else this.stmt("INSERT OR REPLACE INTO reports (key, body) VALUES (?, ?)").run(key, body);
  }
}
