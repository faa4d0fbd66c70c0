/** Log levels accepted by `log_level`, from most to least verbose. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DURABILITY_MODES = ['memory', 'os', 'fsync'] as const;
export type Durability = (typeof DURABILITY_MODES)[number];

export const BACKOFF_KINDS = ['exponential', 'fixed'] as const;
export type Backoff = (typeof BACKOFF_KINDS)[number];

/** Job policy defaults of a group or a queue; a key left out keeps the value above it. */
export interface JobDefaults {
  priority?: number;
  max_attempts?: number;
  backoff?: Backoff;
  retry_delay?: number;
  retry_max_delay?: number;
  lease?: number;
  /** IANA time zone of recurrent jobs whose expression has no CRON_TZ prefix. */
  time_zone?: string;
}

export interface GroupConfig {
  slug: string;
  /** Shard index the group is pinned to; placed by a hash of the slug when absent. */
  shard?: number;
  /** Most unfinished jobs the group may keep; 0 or absent for no limit. */
  max_pending_jobs?: number;
  /** Policy defaults of the group's jobs, over the server's. */
  defaults?: JobDefaults;
  /** Policy defaults of single queues, by queue slug, over the group's. */
  queues?: Record<string, JobDefaults>;
}

export interface UserConfig {
  username: string;
  /** Plain-text password, accepted for compatibility with the original config format. */
  password?: string;
  /** `scrypt$N$r$p$<salt base64>$<hash base64>`, produced by `jobatator hash-password`. */
  password_hash?: string;
  /** Group slugs the user may select; `*` allows every group. */
  groups: string[];
}

/** The validated server configuration, with every default applied. */
export interface Config {
  host: string;
  port: number;
  /** HTTP gateway port; -1 disables the gateway. */
  web_port: number;
  test_mode: boolean;
  allow_dispatch: boolean;
  /** `IGNORE` removes the retry delay, and a new recurrent job publishes one job at once. */
  delay_policy: '' | 'IGNORE';
  log_level: LogLevel;
  /** Directory of the job stores; relative paths start at the working directory. */
  data_dir: string;
  /**
   * `memory` keeps nothing on disk. `os` replies once a change is written to the operating
   * system, and `fsync` once it is synced to disk.
   */
  durability: Durability;
  /** Free bytes the disk of data_dir must keep; under it, changes get storage-unavailable. */
  disk_reserve_bytes: number;
  /** Seconds a done job stays listed before it is deleted; 0 deletes it at once. */
  job_timeout: number;
  /** Seconds an errored job waits before it is pushed again: the base of the backoff. */
  retry_delay: number;
  /** Maximum wait of an exponential backoff, in seconds. */
  retry_max_delay: number;
  /** `exponential` doubles the wait at each attempt, with jitter; `fixed` waits retry_delay. */
  backoff: Backoff;
  /** Failed deliveries after which a job is dead; 0 retries for ever. */
  max_attempts: number;
  /** Seconds a dead job stays listed before it is deleted; 0 deletes it at once. */
  dead_job_ttl: number;
  /** Most unfinished jobs per queue; 0 for no limit. */
  max_pending_jobs: number;
  /** Seconds a worker may hold a job without reporting before it goes to another worker. */
  lease: number;
  /** Unfinished jobs a worker connection may hold at once. */
  prefetch: number;
  /** Number of shard threads. */
  shards: number;
  /** Maximum size of a request line (or multibulk request) in bytes. */
  max_line_bytes: number;
  /** Maximum size of a JSON reply in bytes. A bigger listing gets an error that names the paged form. */
  max_reply_bytes: number;
  /** Unsent output per connection above which the server stops reading it and pushing to it. */
  max_output_bytes: number;
  /** Bytes of partial requests that all connections together may buffer. */
  max_input_buffer_bytes: number;
  /** Idle time after which a newline-less request ending in a space runs; 0 turns the rule off. */
  cli_idle_ms: number;
  /** Seconds of idleness before TCP keepalive probes start; 0 turns keepalive off. */
  tcp_keepalive: number;
  groups: GroupConfig[];
  users: UserConfig[];
}
