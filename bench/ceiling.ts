/**
 * The ceiling of the publish workload: a bare TCP server that replies to every `\n`-terminated
 * line with `OK#` plus 16 fixed characters, as long as Jobatator's PUBLISH reply.
 * It does no parsing beyond counting newlines, so its CPU time per job is about the least a
 * single Node.js main thread can spend to read a request line and write a reply.
 *
 *   node dist/bench/ceiling.js [--port PORT]
 *
 * Prints one JSON line {"msg":"listening","port":N} once it accepts connections.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const REPLY = Buffer.from('OK#0000000000000000\n');
const NEWLINE = 10;

/** Reply buffers for up to this many lines are built once and kept. */
const MAX_CACHED_LINES = 256;
/** Cached reply buffers by line count, so a burst of N lines costs one write. */
const replies: Buffer[] = [];

function repliesFor(count: number): Buffer {
  if (count > MAX_CACHED_LINES) return Buffer.concat(Array.from({ length: count }, () => REPLY));
  let reply = replies[count];
  if (reply === undefined) {
    reply = Buffer.concat(Array.from({ length: count }, () => REPLY));
    replies[count] = reply;
  }
  return reply;
}

function countNewlines(chunk: Buffer): number {
  let count = 0;
  let at = chunk.indexOf(NEWLINE);
  while (at !== -1) {
    count++;
    at = chunk.indexOf(NEWLINE, at + 1);
  }
  return count;
}

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk: Buffer) => {
    const lines = countNewlines(chunk);
    if (lines > 0) socket.write(repliesFor(lines));
  });
  socket.on('error', () => socket.destroy());
});
server.listen(Number(values.port), values.host, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port: address.port })}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
