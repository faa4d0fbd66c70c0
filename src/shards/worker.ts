import type { MessagePort } from 'node:worker_threads';
import { ShardInit } from './messages';
import { Shard } from './shard';

/**
 * Entry of a shard thread, run as one long piscina task. The task keeps running, and the
 * shard serves batches from its port, until the main thread sends `shutdown`. If the thread
 * dies, the task's rejection notifies the main thread.
 */
/**
 * lmdb rejects an internal promise of its own when a commit fails, and nothing handles it.
 * The store already reports that failure through the commit it returned, so the rejection
 * is dropped here; any other unhandled rejection still ends the thread.
 */
process.on('unhandledRejection', (reason: unknown) => {
  if (reason instanceof Error && 'commitError' in reason) return;
  throw reason;
});

function attach(init: ShardInit & { port: MessagePort }): Promise<void> {
  const { port } = init;
  const shard = new Shard(init, port);
  return new Promise((resolve, reject) => {
    port.on('message', (data: unknown) => {
      if (data === 'shutdown') {
        shard.stop().then(
          () => {
            port.close();
            resolve();
          },
          (error: unknown) => {
            port.close();
            reject(error as Error);
          },
        );
        return;
      }
      shard.handleBatch(data as Uint8Array);
    });
    port.postMessage('ready');
  });
}

export = attach;
