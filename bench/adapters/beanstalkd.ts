/**
 * beanstalkd over its text protocol (protocol.txt of beanstalkd 1.12), written here instead
 * of taken from npm. The maintained clients either send one command at a time
 * (node-beanstalk 1.6) or wait for each socket write before they queue the reply handler
 * (jackd 2.2). With 64 requests in flight they would measure the client rather than the
 * broker. The protocol needs only a few commands:
 *
 *   use TUBE                  -> USING TUBE
 *   put PRI DELAY TTR BYTES   -> INSERTED ID        (the body follows on its own line; DELAY in seconds)
 *   watch TUBE / ignore TUBE  -> WATCHING COUNT
 *   reserve                   -> RESERVED ID BYTES  (the body follows on its own line)
 *   delete ID                 -> DELETED
 *
 * The benchmark's payloads contain no CR or LF, so each body is exactly one line.
 */
import { LineSocket } from '../line-socket';
import { PAYLOAD_BYTES, readPayloadFields } from '../payload';
import { BrokerAdapter, DeliveryHandler, Endpoint, Lane, WorkerClient } from './types';

/** Seconds a reserved job may stay unfinished before beanstalkd gives it to another worker. */
const TIME_TO_RUN_SECONDS = 60;

async function connect(endpoint: Endpoint): Promise<LineSocket> {
  return LineSocket.connect(endpoint.host, endpoint.port, '\r\n');
}

export const beanstalkdAdapter: BrokerAdapter = {
  async openPublisher(endpoint, lane) {
    const socket = await connect(endpoint);
    await socket.request(`use ${lane.queue}`, `USING ${lane.queue}`);
    const callbacks: Array<(error: Error | null) => void> = [];
    socket.onLine((line) => {
      const done = callbacks.shift();
      if (done === undefined) return;
      done(line.startsWith('INSERTED ') ? null : new Error(`put got the reply "${line.slice(0, 200)}"`));
    });
    socket.onFailure = (error) => {
      for (const done of callbacks.splice(0)) done(error);
    };
    const put = (payload: string, delaySeconds: number, done: (error: Error | null) => void): void => {
      callbacks.push(done);
      // Payloads are ASCII, so their length in characters is their length in bytes.
      const bytes = payload.length === PAYLOAD_BYTES ? PAYLOAD_BYTES : Buffer.byteLength(payload);
      socket.send(`put 0 ${delaySeconds} ${TIME_TO_RUN_SECONDS} ${bytes}\r\n${payload}\r\n`);
    };
    return {
      publish: (payload, done) => put(payload, 0, done),
      delayed: {
        // put takes its delay in whole seconds.
        stepMs: 1000,
        publish(payload, delayMs, done) {
          if (!Number.isInteger(delayMs / 1000)) {
            done(new Error(`invalid delay of ${delayMs} ms: beanstalkd takes whole seconds`));
            return;
          }
          put(payload, delayMs / 1000, done);
        },
      },
      close: () => socket.close(),
    };
  },

  /**
   * Keeps `prefetch` reserve commands outstanding. beanstalkd runs the commands of one
   * connection in order, and a reserve waits for a job, so a delete sent after a waiting
   * reserve runs only once that reserve got its job. Jobs still reserved when the worker
   * closes go back to the ready queue.
   */
  async openWorker(endpoint: Endpoint, lane: Lane, prefetch: number, onJob: DeliveryHandler, onError): Promise<WorkerClient> {
    const socket = await connect(endpoint);
    await socket.request(`watch ${lane.queue}`, 'WATCHING 2');
    await socket.request('ignore default', 'WATCHING 1');
    socket.onFailure = onError;
    let reservedId: string | null = null;
    socket.onLine((line) => {
      if (reservedId !== null) {
        const fields = readPayloadFields(line);
        onJob(fields.index, fields.sentMicros);
        socket.send(`delete ${reservedId}\r\nreserve\r\n`);
        reservedId = null;
      } else if (line.startsWith('RESERVED ')) {
        reservedId = line.slice(9, line.indexOf(' ', 9));
      } else if (line !== 'DELETED') {
        onError(new Error(`worker got the unexpected reply "${line.slice(0, 200)}"`));
      }
    });
    socket.send('reserve\r\n'.repeat(prefetch));
    return {
      async close() {
        socket.destroy();
      },
    };
  },

  async deleteQueue() {
    // beanstalkd has no command that deletes a tube with its jobs; the harness restarts it instead.
  },
};
