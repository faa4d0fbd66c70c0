/**
 * Load generator process. The harness forks one per role (publishers or workers) and sends it
 * a spec over IPC; the process opens its connections, reports "ready", runs on "start", and
 * reports one result before it exits. Keeping clients in their own processes keeps their CPU
 * time out of the broker's.
 */
import { loadAdapter } from './adapters';
import { BrokerAdapter, DelayedPublisher, PublisherClient, WorkerClient } from './adapters/types';
import { delayFor } from './delay-spread';
import { ChildMessage, ParentMessage, PublisherLane, PublishersResult, PublishersSpec, WorkersResult, WorkersSpec } from './messages';
import { makePayload, nowMicros } from './payload';
import { countLateness, summarizeLatency } from './stats';

/** Interval of the pacing timer for publishers with a fixed rate. */
const PACING_INTERVAL_MS = 1;

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) throw new Error('loadgen runs only as a child process forked by the harness');
    process.send(message, () => resolve());
  });
}

function cpuMicrosSince(start: NodeJS.CpuUsage): number {
  const usage = process.cpuUsage(start);
  return usage.user + usage.system;
}

/** Waits for the next message of the given type from the harness. */
function nextMessage<T extends ParentMessage['type']>(type: T): Promise<Extract<ParentMessage, { type: T }>> {
  return new Promise((resolve) => {
    const listener = (message: ParentMessage): void => {
      if (message.type !== type) return;
      process.off('message', listener);
      resolve(message as Extract<ParentMessage, { type: T }>);
    };
    process.on('message', listener);
  });
}

/**
 * Publishes one lane's jobs on one connection, keeping up to `inflight` unconfirmed. With a
 * rate, job i is due `i / rate` seconds after the start and is sent at the first pacing
 * tick after that.
 */
function runLane(client: PublisherClient, lane: PublisherLane, inflight: number, startedAt: number, tally: PublishersResult): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0;
    let answered = 0;
    let timer: NodeJS.Timeout | undefined;
    const onDone = (error: Error | null): void => {
      answered++;
      if (error === null) {
        tally.published++;
      } else {
        tally.failed++;
        tally.firstError ??= error.message;
      }
      if (answered === lane.count) {
        clearInterval(timer);
        tally.endedAt = Math.max(tally.endedAt, nowMicros());
        resolve();
        return;
      }
      sendDue();
    };
    // Each payload carries the time its request is written, so latency runs from publish
    // to delivery and the pacing timer's own lateness is not charged to the broker. A
    // delayed job's payload carries its due time instead: that time plus its delay.
    const sendOne = (): void => {
      const index = lane.firstIndex + sent;
      sent++;
      if (lane.delays === undefined) {
        client.publish(makePayload(index, nowMicros()), onDone);
        return;
      }
      // runPublishers has checked that every client of a lane with delays has `delayed`.
      const delayed = client.delayed as DelayedPublisher;
      const delayMs = delayFor(index, lane.delays, delayed.stepMs);
      delayed.publish(makePayload(index, nowMicros() + delayMs * 1000), delayMs, onDone);
    };
    const sendDue = (): void => {
      if (lane.rate === 0) {
        while (sent < lane.count && sent - answered < inflight) sendOne();
        return;
      }
      const now = nowMicros();
      while (sent < lane.count && sent - answered < inflight) {
        const due = startedAt + Math.floor((sent * 1e6) / lane.rate);
        if (due > now) break;
        sendOne();
      }
    };
    if (lane.count === 0) {
      resolve();
      return;
    }
    if (lane.rate > 0) timer = setInterval(sendDue, PACING_INTERVAL_MS);
    sendDue();
  });
}

async function runPublishers(adapter: BrokerAdapter, spec: PublishersSpec): Promise<void> {
  const clients = await Promise.all(spec.lanes.map((lane) => adapter.openPublisher(spec.endpoint, lane)));
  if (spec.lanes.some((lane) => lane.delays !== undefined) && clients.some((client) => client.delayed === undefined)) {
    throw new Error(`the ${spec.adapter} adapter cannot publish delayed jobs; leave this broker out of workloads with delays`);
  }
  await send({ type: 'ready' });
  await nextMessage('start');
  const cpuStart = process.cpuUsage();
  const startedAt = nowMicros();
  const result: PublishersResult = {
    role: 'publishers',
    published: 0,
    failed: 0,
    firstError: null,
    startedAt,
    endedAt: startedAt,
    timedOut: false,
    cpuMicros: 0,
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      result.timedOut = true;
      resolve();
    }, spec.timeoutMs);
  });
  await Promise.race([Promise.all(spec.lanes.map((lane, index) => runLane(clients[index], lane, spec.inflight, startedAt, result))), timeout]);
  clearTimeout(timer);
  result.cpuMicros = cpuMicrosSince(cpuStart);
  await Promise.all(clients.map((client) => client.close()));
  await send({ type: 'result', result });
}

async function runWorkers(adapter: BrokerAdapter, spec: WorkersSpec): Promise<void> {
  const counts = new Uint8Array(spec.totalJobs);
  const samples = spec.latency ? new Float64Array(spec.totalJobs) : null;
  const result: WorkersResult = {
    role: 'workers',
    delivered: 0,
    duplicates: 0,
    lost: 0,
    firstAt: 0,
    lastAt: 0,
    latency: null,
    lateness: null,
    errors: 0,
    firstError: null,
    timedOut: false,
    cpuMicros: 0,
  };
  let expected = Number.POSITIVE_INFINITY;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const onError = (error: Error): void => {
    result.errors++;
    result.firstError ??= error.message;
  };
  const onJob = (index: number, sentMicros: number): void => {
    const now = nowMicros();
    if (result.firstAt === 0) result.firstAt = now;
    result.lastAt = now;
    if (index >= counts.length) {
      onError(new Error(`delivered job index ${index} is outside the run's ${counts.length} jobs`));
      return;
    }
    if (counts[index] === 1) result.duplicates++;
    if (counts[index] < 255) counts[index]++;
    if (counts[index] > 1) return;
    if (samples !== null) samples[result.delivered] = now - sentMicros;
    result.delivered++;
    if (result.delivered >= expected) finish();
  };
  const clients: WorkerClient[] = await Promise.all(spec.lanes.map((lane) => adapter.openWorker(spec.endpoint, lane, spec.prefetch, onJob, onError)));
  await send({ type: 'ready' });
  await nextMessage('start');
  const cpuStart = process.cpuUsage();
  void nextMessage('expect').then((message) => {
    expected = message.count;
    if (result.delivered >= expected) finish();
  });
  const timer = setTimeout(() => {
    result.timedOut = true;
    finish();
  }, spec.timeoutMs);
  await finished;
  clearTimeout(timer);
  result.cpuMicros = cpuMicrosSince(cpuStart);
  if (Number.isFinite(expected)) result.lost = Math.max(0, expected - result.delivered);
  if (samples !== null) {
    const delivered = samples.subarray(0, result.delivered);
    result.latency = summarizeLatency(delivered);
    if (spec.lateness !== undefined) result.lateness = countLateness(delivered, spec.lateness.onTimeMicros, spec.lateness.earlyMicros);
  }
  await Promise.all(clients.map((client) => client.close()));
  await send({ type: 'result', result });
}

async function main(): Promise<void> {
  const { spec } = await nextMessage('spec');
  const adapter = await loadAdapter(spec.adapter);
  if (spec.role === 'publishers') {
    await runPublishers(adapter, spec);
  } else {
    await runWorkers(adapter, spec);
  }
}

main().then(
  // Client libraries may keep timers or sockets open; the result is sent, so leave now.
  () => process.exit(0),
  async (error: Error) => {
    await send({ type: 'error', message: error.stack ?? error.message });
    process.exit(1);
  },
);
