/** Single requests to a running Jobatator server, outside the timed load. */
import { Endpoint } from './adapters/types';
import { LineSocket } from './line-socket';

/** Connects, sends PING and returns the milliseconds until the PONG, connection included. */
export async function pingMs(endpoint: Endpoint): Promise<number> {
  const startedAt = performance.now();
  const socket = await LineSocket.connect(endpoint.host, endpoint.port, '\n');
  try {
    await socket.request('PING', 'PONG');
    return performance.now() - startedAt;
  } finally {
    await socket.close();
  }
}

/** Returns the jobs of every group that the server's HEALTH reply counts (`NumJobs`). */
export async function jobCount(endpoint: Endpoint): Promise<number> {
  const socket = await LineSocket.connect(endpoint.host, endpoint.port, '\n');
  try {
    await socket.request(`AUTH ${endpoint.user} ${endpoint.password}`, 'Welcome!');
    const reply = await socket.request('HEALTH');
    let health: { NumJobs?: unknown };
    try {
      health = JSON.parse(reply) as { NumJobs?: unknown };
    } catch {
      throw new Error(`HEALTH got the reply "${reply.slice(0, 200)}", expected a JSON object`);
    }
    if (typeof health.NumJobs !== 'number') throw new Error(`HEALTH reply has no NumJobs: "${reply.slice(0, 200)}"`);
    return health.NumJobs;
  } finally {
    await socket.close();
  }
}
