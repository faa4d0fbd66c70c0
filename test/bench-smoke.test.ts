import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from './helpers/server';

/** Time the whole smoke run may take before the test kills it. */
const SMOKE_TIMEOUT_MS = 90_000;

interface SmokeRecord {
  workload: string;
  broker: string;
  variant: string;
  figures: Record<string, number>;
  error?: string;
}

interface SmokeResults {
  runs: SmokeRecord[];
}

/** Runs a compiled benchmark script and resolves with its exit code and output. */
function runScript(script: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      output += `\nkilled after ${SMOKE_TIMEOUT_MS} ms`;
      child.kill('SIGTERM');
    }, SMOKE_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Runs the harness in smoke mode, writing its page and raw results into `dir`. */
function runSmoke(dir: string): Promise<{ code: number | null; output: string }> {
  return runScript('run.js', ['--smoke', '--output', path.join(dir, 'RESULTS.md'), '--json', path.join(dir, 'results.json')]);
}

function find(results: SmokeResults, workload: string, broker = 'jobatator', variant = ''): SmokeRecord {
  const record = results.runs.find((run) => run.workload === workload && run.broker === broker && run.variant === variant);
  if (record === undefined) throw new Error(`no ${workload} run for ${broker} ${variant}`);
  return record;
}

test('bench smoke mode runs every workload against Jobatator', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobatator-bench-smoke-'));
  try {
    const { code, output } = await runSmoke(dir);
    assert.is(code, 0, output);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as SmokeResults;
    for (const run of results.runs) assert.is(run.error, undefined, `${run.workload} ${run.broker} ${run.variant}: ${run.error}`);

    assert.ok(find(results, 'publish').figures.jobs_per_s > 0);
    assert.ok(find(results, 'publish', 'ceiling').figures.jobs_per_s > 0);
    assert.ok(find(results, 'publish').figures.cpu_us_per_job > 0);

    const endToEnd = find(results, 'end-to-end').figures;
    assert.ok(endToEnd.jobs_per_s > 0);
    assert.is(endToEnd.duplicates, 0);
    assert.is(endToEnd.lost, 0);

    const latency = find(results, 'latency').figures;
    assert.ok(latency.p50_ms > 0);
    assert.ok(latency.p99_ms >= latency.p50_ms);
    assert.ok(latency.max_ms >= latency.p99_ms);

    const memory = find(results, 'memory').figures;
    assert.ok(memory.rss_after_mib > 0);
    assert.ok(Number.isFinite(memory.bytes_per_job));

    const isolation = find(results, 'isolation', 'jobatator', 'shards: 2').figures;
    assert.ok(isolation.p99_alone_ms > 0);
    assert.ok(isolation.p99_flooded_ms > 0);
    assert.ok(isolation.flood_jobs_per_s > 0);

    for (const variant of ['shards: 1', 'shards: 2']) {
      const scaling = find(results, 'scaling', 'jobatator', variant).figures;
      assert.ok(scaling.jobs_per_s > 0, variant);
      assert.is(scaling.lost, 0, variant);
    }

    for (const variant of ['memory', 'os', 'fsync']) {
      const durability = find(results, 'durability', 'jobatator', variant).figures;
      assert.ok(durability.publish_jobs_per_s > 0, variant);
      assert.ok(durability.jobs_per_s > 0, variant);
      assert.ok(durability.cpu_us_per_job > 0, variant);
      assert.is(durability.duplicates, 0, variant);
      assert.is(durability.lost, 0, variant);
    }

    const startup = find(results, 'startup', 'jobatator', 'os').figures;
    assert.ok(startup.fill_jobs_per_s > 0);
    assert.ok(startup.bytes_per_job > 0);
    assert.ok(startup.start_s > 0);
    assert.ok(startup.start_pong_s >= startup.start_s);

    const diskBound = find(results, 'disk-bound', 'jobatator', 'os').figures;
    assert.ok(diskBound.baseline_kib > 0);
    assert.ok(diskBound.after_kib > 0);
    assert.ok(diskBound.size_ratio > 0);
    assert.is(diskBound.duplicates, 0);

    const churn = find(results, 'retry-churn', 'jobatator', 'os').figures;
    assert.ok(churn.jobs_per_s > 0);
    assert.ok(churn.baseline_kib > 0);
    assert.ok(churn.size_ratio > 0);
    assert.ok(churn.rss_trend_ratio > 0);
    assert.is(churn.lost, 0);
    assert.is(churn.parked_kept, 1);

    const delays = find(results, 'delays').figures;
    assert.ok(delays.p50_ms >= 0);
    assert.ok(delays.p99_ms >= delays.p50_ms);
    assert.ok(Number.isFinite(delays.on_time_pct));
    assert.is(delays.early, 0);
    assert.is(delays.lost, 0);
    assert.is(delays.duplicates, 0);

    const page = fs.readFileSync(path.join(dir, 'RESULTS.md'), 'utf8');
    for (const heading of ['## Machine', '## Publish', '## End to end', '## Latency', '## Memory', '## Isolation', '## Scaling', '## Durability', '## Start-up', '## Disk bound', '## Retry churn', '## Delayed jobs under load']) {
      assert.ok(page.includes(heading), `RESULTS.md lacks "${heading}"`);
    }
    assert.ok(page.includes('![Throughput and p99 latency per broker](results.svg)'));
    assert.ok(page.includes('| os ÷ memory, end-to-end jobs/s | at least 0.75x |'), 'RESULTS.md lacks the durability targets');
    const chart = fs.readFileSync(path.join(dir, 'results.svg'), 'utf8');
    assert.ok(chart.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    assert.ok(chart.trimEnd().endsWith('</svg>'));
    assert.ok(chart.includes('>jobatator</text>'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});


test('storage engine comparison runs both engines', async () => {
  const { code, output } = await runScript('engines.js', ['--jobs', '256', '--batches', '64']);
  assert.is(code, 0, output);
  const rows = output.split('\n').filter((line) => /^\| (lmdb|sqlite) \|/.test(line));
  assert.is(rows.length, 4, output);
  for (const line of rows) {
    const cells = line.split('|').map((cell) => cell.trim());
    const [engine, mode, batch, jobsPerSecond, cpu] = cells.slice(1, 6);
    assert.ok(['lmdb', 'sqlite'].includes(engine), line);
    assert.ok(['fsync', 'os'].includes(mode), line);
    assert.is(batch, '64');
    assert.ok(Number(jobsPerSecond.replace(/,/g, '')) > 0, line);
    assert.ok(Number(cpu) > 0, line);
  }
});

test.run();
