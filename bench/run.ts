/**
 * Benchmark harness: runs the workloads against Jobatator, the ceiling server and the peer
 * brokers, prints one progress line per run and writes the results page and chart.
 *
 *   bench/setup && npm run bench -- --workloads end-to-end --end-to-end-jobs 20000; bench/setup stop
 *
 * Exits 1 when any run failed (after writing the results), 2 on invalid options.
 */
import fs from 'node:fs';
import path from 'node:path';
import { attachPeer, BrokerInstance, BrokerName, JobatatorSettings, PEER_NAMES, ROOT, startCeiling, startJobatator, stopStartedServers } from './brokers';
import { killLoadProcesses } from './children';
import { describeMachine } from './machine';
import { BenchOptions, parseOptions, USAGE } from './options';
import { Results, TABLES, renderResultsChart, writeResultsPage } from './report';
import { WORKLOADS } from './registry';
import { brokersFor, RunRecord, WorkloadContext } from './workloads';

function progressLine(record: RunRecord, runs: number): string {
  const table = TABLES[record.workload];
  const name = record.variant === '' ? record.broker : `${record.broker} (${record.variant})`;
  const figures = table.columns
    .filter((column) => record.figures[column.key] !== undefined)
    .map((column) => `${column.label} ${column.format(record.figures[column.key])}`)
    .join(', ');
  const error = record.error === undefined ? '' : `${figures === '' ? '' : '; '}FAILED: ${record.error}`;
  return `[${record.workload}] ${name} run ${record.run}/${table.runs ?? runs}: ${figures}${error}`;
}

/** Options that choose where results go; the page leaves them out of the command it shows. */
const OUTPUT_OPTIONS = new Set(['--output', '--svg', '--json', '--note', '--render']);

/** Returns the command line that produced the figures, quoting arguments with spaces. */
export function describeCommand(argv: string[]): string {
  const visibleArgs: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const [name] = argv[index].split('=', 1);
    if (OUTPUT_OPTIONS.has(name)) {
      if (!argv[index].includes('=')) index++;
      continue;
    }
    visibleArgs.push(/[\s"'$]/.test(argv[index]) ? `'${argv[index].replace(/'/g, `'\\''`)}'` : argv[index]);
  }
  return ['npm run bench --', ...visibleArgs].join(' ').replace(/ --$/, '');
}

/** Writes the JSON, chart and page that the options ask for. */
function writeOutputs(options: BenchOptions, results: Results): void {
  for (const file of [options.json, options.svg, options.output]) {
    if (file !== null) fs.mkdirSync(path.dirname(file), { recursive: true });
  }
  if (options.json !== null) fs.writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
  if (options.svg !== null) {
    fs.writeFileSync(options.svg, renderResultsChart(results));
    process.stdout.write(`chart written to ${options.svg}\n`);
  }
  if (options.output !== null) {
    const chart = options.svg === null ? null : path.relative(path.dirname(options.output), options.svg);
    writeResultsPage(options.output, results, chart);
    process.stdout.write(`results written to ${options.output}\n`);
  }
}

/** Attaches the peers that the chosen workloads run, and starts the ceiling if publish runs. */
async function attachBrokers(options: BenchOptions): Promise<Map<BrokerName, BrokerInstance>> {
  const brokers = new Map<BrokerName, BrokerInstance>();
  const used = new Set(options.workloads.flatMap((workload) => brokersFor(workload, options)));
  for (const name of options.brokers) {
    if (PEER_NAMES.includes(name) && used.has(name)) brokers.set(name, attachPeer(name));
  }
  if (options.brokers.includes('ceiling') && options.workloads.includes('publish')) brokers.set('ceiling', await startCeiling());
  return brokers;
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | null;
  try {
    options = parseOptions(argv, path.join(ROOT, 'bench', 'RESULTS.md'));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === null) return 0;
  if (options.render !== null) {
    // Renders saved results with the current report code; the saved options describe the runs.
    let saved: Results;
    try {
      saved = JSON.parse(fs.readFileSync(options.render, 'utf8')) as Results;
    } catch (error) {
      process.stderr.write(`bench: cannot read --render ${options.render}: ${(error as Error).message}; pass a file that --json wrote\n`);
      return 2;
    }
    writeOutputs({ ...options, json: null }, saved);
    return 0;
  }

  const startedAt = new Date();
  const runs: RunRecord[] = [];
  const brokers = await attachBrokers(options);
  const jobatators = new Map<string, Promise<BrokerInstance>>();
  const context: WorkloadContext = {
    options,
    brokers,
    sharedJobatator(settings: JobatatorSettings) {
      const key = JSON.stringify(settings);
      let server = jobatators.get(key);
      if (server === undefined) {
        server = startJobatator(settings);
        jobatators.set(key, server);
      }
      return server;
    },
    record(record) {
      runs.push(record);
      process.stdout.write(`${progressLine(record, (options as BenchOptions).runs)}\n`);
    },
    note(text) {
      process.stdout.write(`${text}\n`);
    },
  };
  try {
    for (const workload of options.workloads) await WORKLOADS[workload](context);
  } finally {
    for (const broker of brokers.values()) await broker.stop();
    for (const server of jobatators.values()) await (await server).stop();
  }

  const results: Results = {
    startedAt: startedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
    finishedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command: describeCommand(argv),
    machine: describeMachine(ROOT),
    options,
    runs,
  };
  writeOutputs(options, results);
  const failed = runs.filter((record) => record.error !== undefined).length;
  if (failed > 0) process.stderr.write(`bench: ${failed} of ${runs.length} runs failed; see the lines marked FAILED\n`);
  return failed > 0 ? 1 : 0;
}

/** Stops the servers and load generators this process started, then exits on the signal. */
function onSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`bench: ${signal} received; stopping the servers and load generators it started\n`);
  killLoadProcesses();
  stopStartedServers();
  process.exit(130);
}

if (require.main === module) {
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
      killLoadProcesses();
      stopStartedServers();
      process.exit(1);
    },
  );
}
