import * as assert from 'uvu/assert';
import { Job, LineClient, parsePush, waitFor } from './client';

/** Publishes jobs of type `t` in one write, checks each reply, and returns the ids in publish order. */
export async function publishAll(publisher: LineClient, queue: string, payloads: string[]): Promise<string[]> {
  publisher.write(payloads.map((payload) => `PUBLISH ${queue} t ${payload}\n`).join(''));
  const ids: string[] = [];
  for (let index = 0; index < payloads.length; index++) {
    const reply = await publisher.next();
    assert.match(reply, /^OK#[A-Za-z0-9]{16}$/);
    ids.push(reply.slice(3));
  }
  return ids;
}

/** Publishes one job of type `t` and returns its id. */
export async function publish(publisher: LineClient, queue: string, payload = 'x'): Promise<string> {
  const [id] = await publishAll(publisher, queue, [payload]);
  return id;
}

/** Logs in as user1 in group1 and subscribes to the queue. */
export async function subscribe(port: number, queue: string): Promise<LineClient> {
  const worker = await LineClient.login(port);
  await worker.request(`SUBSCRIBE ${queue}`, 'OK');
  return worker;
}

/** Connects `count` workers one after another, each subscribed to the queue as by `subscribe`. */
export async function subscribed(port: number, queue: string, count: number): Promise<LineClient[]> {
  const workers: LineClient[] = [];
  for (let index = 0; index < count; index++) workers.push(await subscribe(port, queue));
  return workers;
}

/** Reads the next line and parses it as a pushed job. */
export async function nextPush(client: LineClient, timeoutMs?: number): Promise<Job> {
  return parsePush(await client.next(timeoutMs));
}

/** Waits for the first line on any of the clients and parses it as a pushed job. */
export async function firstPush(clients: LineClient[], timeoutMs = 5000): Promise<{ index: number; job: Job }> {
  await waitFor(() => clients.some((client) => client.lines.length > 0), timeoutMs, 'a pushed job');
  const index = clients.findIndex((client) => client.lines.length > 0);
  return { index, job: parsePush(await clients[index].next()) };
}

/**
 * A subscribed worker that records each pushed job and reports jobs done with UPDATE_JOB.
 * Each reply line is matched to the oldest report still waiting for one. Subclasses decide
 * when a pushed job is reported, and call `start` at the end of their constructor so that
 * their own fields exist before the first push is handled.
 */
export abstract class ReportingWorker {
  readonly jobs: Job[] = [];
  /** Ids whose done report the server accepted with OK, in reply order. */
  readonly accepted: string[] = [];
  /** Lines that broke the expected order, such as a reply other than OK. */
  readonly unexpected: string[] = [];
  /** Ids reported done whose reply has not arrived yet, oldest first. */
  readonly awaitingReply: string[] = [];
  protected stopped = false;
  private readonly listener = (): void => this.drain();

  constructor(
    readonly client: LineClient,
    private readonly onAccepted: () => void,
  ) {}

  /** Stops handling lines and leaves the socket open. */
  stop(): void {
    this.stopped = true;
    this.client.socket.off('data', this.listener);
  }

  /** Handles the lines read so far and every later one. */
  protected start(): void {
    this.client.socket.on('data', this.listener);
    this.drain();
  }

  /** Handles a pushed job, already recorded in `jobs`. `line` is the push as received. */
  protected abstract onPush(job: Job, line: string): void;

  /** Sends `UPDATE_JOB <id> done` and queues the id, so that its reply is matched after those of earlier reports. */
  protected reportDone(id: string): void {
    this.awaitingReply.push(id);
    this.client.send(`UPDATE_JOB ${id} done`);
  }

  private drain(): void {
    while (!this.stopped && this.client.lines.length > 0) {
      const line = this.client.lines.shift() as string;
      if (line.startsWith('{"Job"')) {
        const job = parsePush(line);
        this.jobs.push(job);
        this.onPush(job, line);
        continue;
      }
      const id = this.awaitingReply.shift();
      if (line === 'OK' && id !== undefined) {
        this.accepted.push(id);
        this.onAccepted();
      } else {
        this.unexpected.push(line);
      }
    }
  }
}
