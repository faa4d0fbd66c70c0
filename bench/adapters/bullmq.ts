/**
 * BullMQ on Redis. Jobs are removed once completed, as the other brokers delete a finished
 * job. The broker's CPU time counted for BullMQ is Redis's alone: BullMQ's own queue logic
 * runs in the client processes and in Lua scripts inside Redis.
 */
import { Queue, Worker } from 'bullmq';
import { BrokerAdapter, DeliveryHandler, Endpoint, Lane, PublisherClient, WorkerClient } from './types';

interface JobData {
  n: number;
  t: number;
  p: string;
}

function connection(endpoint: Endpoint): { host: string; port: number; maxRetriesPerRequest: null } {
  // BullMQ's workers wait on blocking Redis commands, which must not be retried by count.
  return { host: endpoint.host, port: endpoint.port, maxRetriesPerRequest: null };
}

export const bullmqAdapter: BrokerAdapter = {
  async openPublisher(endpoint: Endpoint, lane: Lane): Promise<PublisherClient> {
    const queue = new Queue<JobData>(lane.queue, {
      connection: connection(endpoint),
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
    });
    await queue.waitUntilReady();
    const add = (payload: string, delayMs: number, done: (error: Error | null) => void): void => {
      // BullMQ stores the data as JSON, so the stored job contains the same 100 bytes.
      queue.add('load', JSON.parse(payload) as JobData, delayMs > 0 ? { delay: delayMs } : undefined).then(
        () => done(null),
        (error: Error) => done(error),
      );
    };
    return {
      publish: (payload, done) => add(payload, 0, done),
      // A worker moves a delayed job from Redis's delayed set to the waiting list once it is due.
      delayed: { stepMs: 1, publish: add },
      close: () => queue.close(),
    };
  },

  async openWorker(endpoint: Endpoint, lane: Lane, prefetch: number, onJob: DeliveryHandler, onError): Promise<WorkerClient> {
    const worker = new Worker<JobData>(
      lane.queue,
      async (job) => {
        onJob(job.data.n, job.data.t);
      },
      { connection: connection(endpoint), concurrency: prefetch },
    );
    worker.on('error', onError);
    await worker.waitUntilReady();
    return {
      async close() {
        worker.off('error', onError);
        await worker.close();
      },
    };
  },

  async deleteQueue(endpoint, lane) {
    const queue = new Queue(lane.queue, { connection: connection(endpoint) });
    try {
      await queue.obliterate({ force: true });
    } finally {
      await queue.close();
    }
  },
};
