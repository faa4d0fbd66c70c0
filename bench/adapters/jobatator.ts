/**
 * Jobatator over its line protocol: the server replies `OK#<id>` to `PUBLISH queue type payload`
 * and to `PUBLISH_JOB queue type payload {"delay":seconds}`, and a subscribed worker gets one
 * `{"Job":{"ID":"<16 characters>",...}}` line per job and finishes it with
 * `UPDATE_JOB <id> done`, to which the server replies `OK`.
 */
import { LineSocket } from '../line-socket';
import { readPayloadFields } from '../payload';
import { BrokerAdapter, DeliveryHandler, Endpoint, Lane, PublisherClient, WorkerClient } from './types';

/** Length of `{"Job":{"ID":"`, after which a pushed line has the 16-character job id. */
const ID_OFFSET = 14;
const ID_LENGTH = 16;

async function login(endpoint: Endpoint, lane: Lane): Promise<LineSocket> {
  const socket = await LineSocket.connect(endpoint.host, endpoint.port, '\n');
  await socket.request(`AUTH ${endpoint.user} ${endpoint.password}`, 'Welcome!');
  await socket.request(`USE_GROUP ${lane.group}`, 'OK');
  return socket;
}

/**
 * Sends pipelined PUBLISH requests, and PUBLISH_JOB requests with a `delay` option for
 * delayed jobs, and matches the replies to them in order.
 */
function pipelinedPublisher(socket: LineSocket, lane: Lane): PublisherClient {
  const callbacks: Array<(error: Error | null) => void> = [];
  socket.onLine((line) => {
    const done = callbacks.shift();
    if (done === undefined) return;
    done(line.startsWith('OK#') ? null : new Error(`publish request got the reply "${line.slice(0, 200)}"`));
  });
  socket.onFailure = (error) => {
    for (const done of callbacks.splice(0)) done(error);
  };
  return {
    publish(payload, done) {
      callbacks.push(done);
      socket.send(`PUBLISH ${lane.queue} load ${payload}\n`);
    },
    delayed: {
      // The server takes `delay` in seconds with fractions and rounds it to whole milliseconds.
      stepMs: 1,
      publish(payload, delayMs, done) {
        callbacks.push(done);
        socket.send(`PUBLISH_JOB ${lane.queue} load ${payload} {"delay":${delayMs / 1000}}\n`);
      },
    },
    close: () => socket.close(),
  };
}

export const jobatatorAdapter: BrokerAdapter = {
  async openPublisher(endpoint, lane) {
    return pipelinedPublisher(await login(endpoint, lane), lane);
  },

  async openWorker(endpoint: Endpoint, lane: Lane, _prefetch: number, onJob: DeliveryHandler, onError): Promise<WorkerClient> {
    // The server's `prefetch` setting, not the client, limits the jobs a connection holds.
    const socket = await login(endpoint, lane);
    await socket.request(`SUBSCRIBE ${lane.queue}`, 'OK');
    socket.onFailure = onError;
    socket.onLine((line) => {
      if (line.startsWith('{"Job"')) {
        const id = line.slice(ID_OFFSET, ID_OFFSET + ID_LENGTH);
        const fields = readPayloadFields(line);
        onJob(fields.index, fields.sentMicros);
        socket.send(`UPDATE_JOB ${id} done\n`);
      } else if (line !== 'OK') {
        onError(new Error(`worker got the unexpected line "${line.slice(0, 200)}"`));
      }
    });
    return { close: () => socket.close() };
  },

  async deleteQueue(endpoint, lane) {
    const socket = await login(endpoint, lane);
    try {
      // A run that failed early may not have created its queue.
      const purged = await socket.request(`PURGE_JOBS ${lane.queue}`);
      if (purged !== 'OK' && purged !== 'Err: unknown-queue') throw new Error(`PURGE_JOBS ${lane.queue} got the reply "${purged}"`);
      await socket.request(`DELETE_QUEUE ${lane.queue}`);
    } finally {
      await socket.close();
    }
  },
};

/**
 * The ceiling: a bare TCP server that replies to every line with a fixed `OK#` line, driven by
 * Jobatator's publisher code without a login. It has no queues, so it takes part in the
 * publish workload only.
 */
export const ceilingAdapter: BrokerAdapter = {
  async openPublisher(endpoint, lane) {
    return pipelinedPublisher(await LineSocket.connect(endpoint.host, endpoint.port, '\n'), lane);
  },
  openWorker() {
    return Promise.reject(new Error('the ceiling server supports the publish workload only: it has no queues and no workers'));
  },
  async deleteQueue() {
    // The ceiling keeps nothing.
  },
};
