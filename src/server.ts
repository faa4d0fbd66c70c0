import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { Authenticator } from './auth/passwords';
import type { Config } from './config/types';
import { startGateway } from './http/gateway';
import { Connection, ConnectionHost } from './net/connection';
import { listenTcp } from './net/listener';
import type { ServerContext } from './protocol/context';
import { Dispatcher } from './protocol/dispatcher';
import { claimDataDir } from './storage/data-dir';
import type { Client } from './protocol/session';
import { Op, RestoredConnection } from './shards/messages';
import { ShardPool } from './shards/pool';

/** How long a graceful stop waits for replies still owed to clients. */
const STOP_GRACE_MS = 3000;

/**
 * The Jobatator server: the TCP listener, the HTTP gateway and the shard threads. The main
 * thread owns every socket and session; queue state lives in the shards.
 */
export class JobatatorServer implements ServerContext, ConnectionHost {
  readonly shards: ShardPool;
  readonly authenticator: Authenticator;
  readonly dispatcher: Dispatcher;
  readonly clients = new Map<number, Client>();
  readonly groups: Set<string>;
  readonly startedAt = Date.now();
  private tcp: net.Server | undefined;
  private http: http.Server | undefined;
  private readonly connections = new Set<Connection>();
  /** Every open TCP socket, including ones ended by the server and still half-open. */
  private readonly sockets = new Set<net.Socket>();
  private nextClientId = 1;
  private inputBytes = 0;
  private stopping: Promise<void> | undefined;
  private onStopped: (() => void) | undefined;
  /** Gives up the data directory once the stores are closed. */
  private releaseDataDir: (() => void) | undefined;

  constructor(
    readonly config: Config,
    readonly logger: Logger,
  ) {
    this.groups = new Set(config.groups.map((group) => group.slug));
    this.authenticator = new Authenticator(config.users);
    this.dispatcher = new Dispatcher(this);
    this.shards = new ShardPool(config, logger, {
      onPush: (connectionId, line, jobId, group) => {
        const client = this.clients.get(connectionId);
        if (client === undefined || !client.acceptsPushes) {
          // The client closed, or is closing, while the push was on its way. The bounce
          // returns the job without an attempt, or takes back the attempt that the Close
          // already counted.
          this.shards.notify([this.shards.shardOf(group)], Op.Bounce, connectionId, [jobId, group]);
          return;
        }
        const session = client.session;
        if (session.held.size >= (session.prefetch || config.prefetch)) {
          // Each shard counts only its own pushes, so a connection served by several
          // shards can be offered more than its prefetch: send the extra job back.
          // TODO: a slot freed by a report goes to whichever shard pushes first, usually the
          // one that sent the report's OK. A busy queue can so starve the worker's queues on
          // other shards. Reserving freed slots for waiting shards would fix it.
          const shard = this.shards.shardOf(group);
          session.awaitingCredit.add(shard);
          this.shards.notify([shard], Op.Bounce, connectionId, [jobId, group]);
          return;
        }
        session.held.set(jobId, group);
        client.output.send(line);
      },
      onRelease: (connectionId, jobId, counted) => {
        const client = this.clients.get(connectionId);
        if (client === undefined || !client.session.held.has(jobId)) return;
        // A revoked job stays counted until the client reports on it, as in the shard.
        if (counted) client.session.revoked.add(jobId);
        else this.releaseHeld(client, jobId);
      },
      connectionsOf: (shard) => this.connectionsOf(shard),
      onJobLost: (connectionId, jobId) => {
        const client = this.clients.get(connectionId);
        if (client !== undefined) this.releaseHeld(client, jobId);
      },
    });
  }

  get maxLineBytes(): number {
    return this.config.max_line_bytes;
  }

  get maxOutputBytes(): number {
    return this.config.max_output_bytes;
  }

  get cliIdleMs(): number {
    return this.config.cli_idle_ms;
  }

  /** Starts the shards, then the TCP listener and the HTTP gateway. */
  async start(): Promise<void> {
    if (this.config.durability === 'memory') {
      this.logger.info({ durability: 'memory' }, 'jobs are kept in memory only: a restart loses them');
    } else {
      const dataDir = path.resolve(this.config.data_dir);
      this.releaseDataDir = claimDataDir(dataDir);
      this.logger.info({ durability: this.config.durability, data_dir: dataDir }, 'jobs are stored on disk');
    }
    await this.shards.start();
    this.tcp = await listenTcp(this.config.host, this.config.port, this.config.tcp_keepalive, this.logger, (socket) =>
      this.accept(socket),
    );
    const { host, port } = this.tcpAddress();
    let webPort: number | undefined;
    if (this.config.web_port >= 0) {
      this.http = await startGateway(this, this.config.host, this.config.web_port);
      webPort = (this.http.address() as net.AddressInfo).port;
    }
    this.logger.info({ host, port, web_port: webPort ?? null, shards: this.shards.size }, 'listening');
  }

  /** Resolves when the server has stopped, by `stop` or by STOP_SERVER. */
  stopped(): Promise<void> {
    return new Promise((resolve) => {
      this.onStopped = resolve;
    });
  }

  tcpAddress(): { host: string; port: number } {
    const address = this.tcp?.address() as net.AddressInfo | null;
    return { host: this.config.host, port: address?.port ?? this.config.port };
  }

  /** Allocates an id for a new client. */
  newClientId(): number {
    return this.nextClientId++;
  }

  reserveInput(delta: number): boolean {
    this.inputBytes += delta;
    return this.inputBytes <= this.config.max_input_buffer_bytes;
  }

  setPushPaused(connection: Connection, paused: boolean): void {
    connection.session.pushPaused = paused;
    this.shards.notify(connection.session.shards, Op.Pause, connection.id, [paused]);
  }

  onClosed(connection: Connection): void {
    this.connections.delete(connection);
    this.release(connection);
  }

  releaseHeld(client: Client, jobId: string): void {
    const session = client.session;
    session.revoked.delete(jobId);
    if (!session.letGo(jobId)) return;
    if (session.awaitingCredit.size > 0 && session.held.size < (session.prefetch || this.config.prefetch)) {
      this.shards.notify(session.awaitingCredit, Op.Credit, client.id);
      session.awaitingCredit.clear();
    }
  }

  /** Describes the open connections that used a shard, for a restarted shard thread. */
  private connectionsOf(shard: number): RestoredConnection[] {
    const restored: RestoredConnection[] = [];
    for (const client of this.clients.values()) {
      const session = client.session;
      if (!session.shards.has(shard)) continue;
      const onShard = (group: string): boolean => this.shards.shardOf(group) === shard;
      const subscriptions: Array<[string, string]> = [];
      for (const [group, queues] of session.subscriptions) {
        if (onShard(group)) for (const queue of queues) subscriptions.push([group, queue]);
      }
      const held: Array<[string, string]> = [];
      const revoked: string[] = [];
      for (const [jobId, group] of session.held) {
        if (!onShard(group)) continue;
        if (session.revoked.has(jobId)) revoked.push(jobId);
        else held.push([group, jobId]);
      }
      restored.push([client.id, session.user?.username ?? '', client.address, subscriptions, held, revoked, session.pushPaused, session.awaitingCredit.has(shard), session.prefetch]);
    }
    return restored;
  }

  /** Forgets a client and returns the jobs it held to pending. */
  release(client: Client): void {
    this.clients.delete(client.id);
    // Connections that a stop closes did not fail their jobs: a held job stays stored as
    // it was before its delivery, and comes back pending, without an attempt, at the next start.
    if (this.stopping !== undefined) return;
    this.shards.notify(client.session.shards, Op.Close, client.id);
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private accept(socket: net.Socket): void {
    if (this.stopping !== undefined) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const connection = new Connection(this.newClientId(), socket, this);
    this.connections.add(connection);
    this.clients.set(connection.id, connection);
  }

  private async shutdown(reason: string): Promise<void> {
    this.logger.info({ reason }, 'stopping');
    const closedTcp = new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve()));
    const closedHttp = new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()));
    this.http?.closeAllConnections();
    for (const connection of this.connections) connection.finishAndClose();
    const deadline = Date.now() + STOP_GRACE_MS;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const connection of this.connections) connection.destroy();
    // Sockets the server already ended wait for their peers, which may never close.
    for (const socket of this.sockets) socket.destroy();
    await Promise.all([closedTcp, closedHttp]);
    await this.shards.close();
    this.releaseDataDir?.();
    this.logger.info('stopped');
    this.onStopped?.();
  }
}
