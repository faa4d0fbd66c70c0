import type { Logger } from 'pino';
import type { Authenticator } from '../auth/passwords';
import type { Config } from '../config/types';
import type { ShardPool } from '../shards/pool';
import type { Client } from './session';

/** Server services that command handlers use. */
export interface ServerContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly shards: ShardPool;
  readonly authenticator: Authenticator;
  /** Every connected client, TCP and gateway, by id. */
  readonly clients: Map<number, Client>;
  readonly groups: Set<string>;
  readonly startedAt: number;
  /** Address the TCP listener is bound to. */
  tcpAddress(): { host: string; port: number };
  /** Records that a job is no longer reserved for a client, and lets bounced shards push again. */
  releaseHeld(client: Client, jobId: string): void;
  /** Stops the server gracefully. */
  stop(reason: string): void;
}
