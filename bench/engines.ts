/**
 * Storage engine comparison: the writes one shard would make, against lmdb (lmdb-js) and
 * SQLite (better-sqlite3), with one store of its own per shard. Each cycle publishes a
 * batch of jobs (one row each, under sequential keys), finishes the jobs of the batch
 * before it (a delete, as with job_timeout 0) and commits both as one transaction. With
 * `fsync` a commit counts once it is synced to disk; with `os` the operating system
 * decides when to write.
 *
 *   npm run bench:engines -- [--jobs N] [--batches 64,512] [--engines lmdb,sqlite]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { integer, list } from './options';
import { makePayload } from './payload';

const ENGINES = ['lmdb', 'sqlite'] as const;
const MODES = ['fsync', 'os'] as const;
type EngineName = (typeof ENGINES)[number];
type Mode = (typeof MODES)[number];

/** A job row: the fields a durable job keeps, with its payload as sent. */
type JobRow = [id: string, queue: string, type: string, payload: string, state: string, attempts: number, startedAt: number, endedAt: number];

/** Commits an lmdb store may have in flight while the shard goes on with the next batch. */
const LMDB_COMMITS_IN_FLIGHT = 2;

interface Figures {
  engine: EngineName;
  mode: Mode;
  batch: number;
  jobsPerSecond: number;
  cpuMicrosPerJob: number;
  /** Time the writing thread spent inside the engine's calls, per job. */
  blockedMicrosPerJob: number;
  /** Size of the store's files once every job has passed through. */
  diskBytes: number;
}

/** One shard's store, as the comparison drives it. */
interface Store {
  /** Writes one cycle and resolves once the shard may go on. The `durable` promise resolves once the cycle is committed. */
  cycle(added: Array<[number, JobRow]>, removed: number[]): Promise<{ durable: Promise<void> }>;
  close(): Promise<void>;
}

function row(seq: number): JobRow {
  return [`job${String(seq).padStart(13, '0')}`, 'load', 'bench', makePayload(seq, 0), 'pending', 0, 0, 0];
}

async function openLmdb(dir: string, mode: Mode): Promise<Store> {
  const { open } = await import('lmdb');
  const db = open<JobRow, number>({ path: dir, compression: false, noSync: mode === 'os', keyEncoding: 'uint32' });
  return {
    async cycle(added, removed) {
      for (const [seq, value] of added) void db.put(seq, value);
      for (const seq of removed) void db.remove(seq);
      // Writes issued in one turn of the event loop form one transaction, committed by
      // lmdb's own write thread, so the shard thread goes on at once.
      const durable = db.committed.then(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      return { durable };
    },
    async close() {
      await db.flushed;
      await db.close();
    },
  };
}

async function openSqlite(dir: string, mode: Mode): Promise<Store> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path.join(dir, 'jobs.db'));
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode syncs at checkpoints only: a process crash loses nothing, a machine
  // crash may lose the last commits. FULL syncs every commit.
  db.pragma(`synchronous = ${mode === 'fsync' ? 'FULL' : 'NORMAL'}`);
  db.exec('CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT, queue TEXT, type TEXT, payload TEXT, state TEXT, attempts INTEGER, started_at REAL, ended_at REAL)');
  const insert = db.prepare('INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const remove = db.prepare('DELETE FROM jobs WHERE seq = ?');
  const write = db.transaction((added: Array<[number, JobRow]>, removed: number[]) => {
    for (const [seq, value] of added) insert.run(seq, ...value);
    for (const seq of removed) remove.run(seq);
  });
  return {
    async cycle(added, removed) {
      // better-sqlite3 is synchronous: the shard thread waits for the commit and its sync.
      write(added, removed);
      await new Promise((resolve) => setImmediate(resolve));
      return { durable: Promise.resolve() };
    },
    async close() {
      db.close();
    },
  };
}

function directorySize(dir: string): number {
  let bytes = 0;
  for (const entry of fs.readdirSync(dir)) bytes += fs.statSync(path.join(dir, entry)).size;
  return bytes;
}

async function measure(engine: EngineName, mode: Mode, batch: number, jobs: number): Promise<Figures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `jobatator-engine-${engine}-`));
  try {
    const store = engine === 'lmdb' ? await openLmdb(dir, mode) : await openSqlite(dir, mode);
    const pending: Array<Promise<void>> = [];
    let blockedNanos = 0n;
    const cycles = Math.ceil(jobs / batch);
    const startedAt = process.hrtime.bigint();
    const cpuBefore = process.cpuUsage();
    for (let cycle = 0; cycle < cycles; cycle++) {
      const added: Array<[number, JobRow]> = [];
      for (let index = 0; index < batch; index++) {
        const seq = cycle * batch + index + 1;
        added.push([seq, row(seq)]);
      }
      const removed = cycle === 0 ? [] : added.map(([seq]) => seq - batch);
      const callStarted = process.hrtime.bigint();
      const { durable } = await store.cycle(added, removed);
      blockedNanos += process.hrtime.bigint() - callStarted;
      pending.push(durable);
      if (pending.length > LMDB_COMMITS_IN_FLIGHT) await pending.shift();
    }
    await Promise.all(pending);
    const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
    const cpu = process.cpuUsage(cpuBefore);
    await store.close();
    const total = cycles * batch;
    return {
      engine,
      mode,
      batch,
      jobsPerSecond: total / seconds,
      cpuMicrosPerJob: (cpu.user + cpu.system) / total,
      // The setImmediate of each cycle is counted too; it is the same for both engines.
      blockedMicrosPerJob: Number(blockedNanos) / 1000 / total,
      diskBytes: directorySize(dir),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function formatRow(figures: Figures): string {
  const number = (value: number, digits = 0): string => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `| ${figures.engine} | ${figures.mode} | ${figures.batch} | ${number(figures.jobsPerSecond)} | ${number(figures.cpuMicrosPerJob, 1)} | ${number(figures.blockedMicrosPerJob, 1)} | ${number(figures.diskBytes / 1024)} |`;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string', default: '100000' },
      batches: { type: 'string', default: '64,512' },
      engines: { type: 'string', default: ENGINES.join(',') },
      modes: { type: 'string', default: MODES.join(',') },
    },
  });
  const jobs = integer('jobs', values.jobs as string, 1);
  const batches = (values.batches as string).split(',').map((text) => integer('batches', text.trim(), 1));
  const engines = list('engines', values.engines as string, ENGINES);
  const modes = list('modes', values.modes as string, MODES);
  process.stdout.write(`${jobs} jobs per row, each published and finished, 100-byte payloads, one store in ${os.tmpdir()}\n\n`);
  process.stdout.write('| engine | durability | jobs per commit | jobs/s | CPU µs/job | thread blocked µs/job | disk KiB at the end |\n');
  process.stdout.write('| --- | --- | ---: | ---: | ---: | ---: | ---: |\n');
  for (const batch of batches) {
    for (const mode of modes) {
      for (const engine of engines) process.stdout.write(`${formatRow(await measure(engine, mode, batch, jobs))}\n`);
    }
  }
}

main(process.argv.slice(2)).catch((error: Error) => {
  process.stderr.write(`engines: ${error.message}\n`);
  process.exit(1);
});
