import net from 'node:net';
import type { Logger } from 'pino';

/** Errors repeated within this window are logged once, with a count. */
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Opens the TCP listener. Connections accepted while the process is out of file
 * descriptors are closed at once by libuv, so no client hangs. The error is logged with a
 * rate limit.
 */
export function listenTcp(
  host: string,
  port: number,
  keepaliveSeconds: number,
  logger: Logger,
  onSocket: (socket: net.Socket) => void,
): Promise<net.Server> {
  const server = net.createServer({
    allowHalfOpen: true,
    noDelay: true,
    keepAlive: keepaliveSeconds > 0,
    keepAliveInitialDelay: keepaliveSeconds * 1000,
  });
  server.on('connection', onSocket);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      let lastLogged = 0;
      let suppressed = 0;
      server.on('error', (error: NodeJS.ErrnoException) => {
        const now = Date.now();
        if (now - lastLogged < ERROR_LOG_INTERVAL_MS) {
          suppressed++;
          return;
        }
        logger.warn({ err: error, code: error.code, suppressed }, 'TCP listener error; connections are still accepted when resources allow');
        lastLogged = now;
        suppressed = 0;
      });
      resolve(server);
    });
  });
}
