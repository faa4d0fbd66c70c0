import os from 'node:os';
import { isTimeZone } from '../shards/cron';
import { Backoff, BACKOFF_KINDS, Config, Durability, DURABILITY_MODES, GroupConfig, JobDefaults, LOG_LEVELS, LogLevel, UserConfig } from './types';

const MIB = 1024 * 1024;

/** Builds the defaults; `shards` follows the core count of the machine the server runs on. */
export function defaultConfig(): Config {
  return {
    host: '0.0.0.0',
    port: 8962,
    web_port: 8952,
    test_mode: false,
    allow_dispatch: false,
    delay_policy: '',
    data_dir: './data',
    durability: 'os',
    disk_reserve_bytes: 64 * MIB,
    log_level: 'info',
    job_timeout: 60,
    retry_delay: 30,
    retry_max_delay: 3600,
    backoff: 'exponential',
    max_attempts: 25,
    dead_job_ttl: 7 * 86_400,
    max_pending_jobs: 0,
    lease: 1800,
    prefetch: 1,
    shards: Math.max(1, os.availableParallelism() - 1),
    max_line_bytes: 16 * MIB,
    max_reply_bytes: 16 * MIB,
    max_output_bytes: 8 * MIB,
    max_input_buffer_bytes: 256 * MIB,
    cli_idle_ms: 100,
    tcp_keepalive: 60,
    groups: [],
    users: [],
  };
}

/** Thrown with every problem found in a config, one message each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export interface ValidationResult {
  config: Config;
  warnings: string[];
}

interface IntegerRule {
  min: number;
  max: number;
  unit: string;
}

const INTEGER_KEYS: Record<string, IntegerRule> = {
  port: { min: 0, max: 65535, unit: 'a TCP port' },
  web_port: { min: -1, max: 65535, unit: 'a TCP port, or -1 to disable the gateway' },
  job_timeout: { min: 0, max: 31_536_000, unit: 'seconds' },
  retry_delay: { min: 0, max: 31_536_000, unit: 'seconds' },
  retry_max_delay: { min: 0, max: 31_536_000, unit: 'seconds' },
  max_attempts: { min: 0, max: 1_000_000, unit: 'attempts, 0 for no limit' },
  dead_job_ttl: { min: 0, max: 315_360_000, unit: 'seconds' },
  max_pending_jobs: { min: 0, max: 1_000_000_000, unit: 'jobs per queue, 0 for no limit' },
  lease: { min: 1, max: 31_536_000, unit: 'seconds' },
  prefetch: { min: 1, max: 100_000, unit: 'jobs' },
  shards: { min: 1, max: 256, unit: 'threads' },
  max_line_bytes: { min: 1024, max: 1024 * MIB, unit: 'bytes' },
  max_reply_bytes: { min: 1024, max: 1024 * MIB, unit: 'bytes' },
  max_output_bytes: { min: 1024, max: 1024 * MIB, unit: 'bytes' },
  max_input_buffer_bytes: { min: 1024, max: 16 * 1024 * MIB, unit: 'bytes' },
  disk_reserve_bytes: { min: 0, max: 1024 * 1024 * MIB, unit: 'bytes, 0 for no reserve' },
  cli_idle_ms: { min: 0, max: 60_000, unit: 'milliseconds' },
  tcp_keepalive: { min: 0, max: 86_400, unit: 'seconds' },
};

const BOOLEAN_KEYS = ['test_mode', 'allow_dispatch'] as const;
const KNOWN_KEYS = new Set([
  'host',
  'delay_policy',
  'log_level',
  'data_dir',
  'durability',
  'backoff',
  'groups',
  'users',
  ...BOOLEAN_KEYS,
  ...Object.keys(INTEGER_KEYS),
]);

const SLUG_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (the key is missing)';
  return JSON.stringify(value) ?? String(value);
}

/**
 * Validates a parsed config document and applies defaults.
 * Throws a ConfigError listing every problem; unknown keys only warn.
 * Messages never include a password value.
 */
export function validateConfig(raw: unknown): ValidationResult {
  const config = defaultConfig();
  const problems: string[] = [];
  const warnings: string[] = [];

  if (raw === null || raw === undefined) {
    raw = {};
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(['the config must be a YAML mapping of keys to values']);
  }
  const input = raw as Record<string, unknown>;

  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.has(key)) {
      warnings.push(`unknown config key "${key}" is ignored`);
    }
  }

  if (input.host !== undefined) {
    if (typeof input.host === 'string' && input.host.length > 0) {
      config.host = input.host;
    } else {
      problems.push(`host: expected an address such as 127.0.0.1, got ${describe(input.host)}`);
    }
  }

  for (const [key, rule] of Object.entries(INTEGER_KEYS)) {
    const value = input[key];
    if (value === undefined) continue;
    const problem = integerProblem(key, value, rule);
    if (problem !== null) {
      problems.push(problem);
      continue;
    }
    (config as unknown as Record<string, number>)[key] = value as number;
  }

  for (const key of BOOLEAN_KEYS) {
    const value = input[key];
    if (value === undefined) continue;
    if (typeof value !== 'boolean') {
      problems.push(`${key}: expected true or false, got ${describe(value)}`);
      continue;
    }
    config[key] = value;
  }

  if (input.delay_policy !== undefined && input.delay_policy !== null) {
    const policy = String(input.delay_policy).toUpperCase();
    if (policy === '' || policy === 'IGNORE') {
      config.delay_policy = policy;
    } else {
      problems.push(`delay_policy: expected "" or "IGNORE", got ${describe(input.delay_policy)}`);
    }
  }

  if (input.data_dir !== undefined) {
    if (typeof input.data_dir === 'string' && input.data_dir.trim() !== '') {
      config.data_dir = input.data_dir;
    } else {
      problems.push(`data_dir: expected a directory path, got ${describe(input.data_dir)}`);
    }
  }

  if (input.durability !== undefined) {
    const mode = String(input.durability).toLowerCase();
    if ((DURABILITY_MODES as readonly string[]).includes(mode)) {
      config.durability = mode as Durability;
    } else {
      problems.push(`durability: expected one of ${DURABILITY_MODES.join(', ')}, got ${describe(input.durability)}`);
    }
  }

  if (input.backoff !== undefined) {
    const kind = String(input.backoff).toLowerCase();
    if ((BACKOFF_KINDS as readonly string[]).includes(kind)) {
      config.backoff = kind as Backoff;
    } else {
      problems.push(`backoff: expected one of ${BACKOFF_KINDS.join(', ')}, got ${describe(input.backoff)}`);
    }
  }

  if (input.log_level !== undefined) {
    const level = String(input.log_level).toLowerCase();
    if ((LOG_LEVELS as readonly string[]).includes(level)) {
      config.log_level = level as LogLevel;
    } else {
      problems.push(`log_level: expected one of ${LOG_LEVELS.join(', ')}, got ${describe(input.log_level)}`);
    }
  }

  const declaredSlugs = new Set<string>();
  // With an invalid shards value, group placements cannot be checked against it.
  const shards = problems.some((problem) => problem.startsWith('shards:')) ? Infinity : config.shards;
  config.groups = validateGroups(input.groups, shards, problems, warnings, declaredSlugs);
  config.users = validateUsers(input.users, declaredSlugs, problems, warnings);
  if (config.users.length === 0 && problems.length === 0) {
    warnings.push('no users are configured, so no client can log in; add entries under users');
  }

  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return { config, warnings };
}

/** Validates `groups`. Every well-formed slug goes into `declared`, even when its entry has another problem. */
function validateGroups(raw: unknown, shards: number, problems: string[], warnings: string[], declared: Set<string>): GroupConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push('groups: expected a list of {slug} entries');
    return [];
  }
  const groups: GroupConfig[] = [];
  const seen = new Set<string>();
  raw.forEach((entry: unknown, index) => {
    const where = `groups[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${where}: expected a mapping with a slug, got ${describe(entry)}`);
      return;
    }
    const { slug, shard, max_pending_jobs: maxPending, defaults, queues } = entry as Record<string, unknown>;
    if (typeof slug !== 'string' || !SLUG_PATTERN.test(slug)) {
      problems.push(
        `${where}.slug: expected 1 to 128 letters, digits or _ . : -, got ${describe(slug)}`,
      );
      return;
    }
    if (seen.has(slug)) {
      problems.push(`${where}.slug: group "${slug}" is declared twice`);
      return;
    }
    seen.add(slug);
    declared.add(slug);
    const group: GroupConfig = { slug };
    if (shard !== undefined) {
      if (typeof shard !== 'number' || !Number.isInteger(shard) || shard < 0 || shard >= shards) {
        const range = Number.isFinite(shards) ? `from 0 to ${shards - 1} (shards: ${shards})` : 'of at least 0';
        problems.push(`${where}.shard: expected an integer ${range}, got ${describe(shard)}`);
      } else {
        group.shard = shard;
      }
    }
    if (maxPending !== undefined) {
      const problem = integerProblem(`${where}.max_pending_jobs`, maxPending, GROUP_MAX_PENDING);
      if (problem === null) group.max_pending_jobs = maxPending as number;
      else problems.push(problem);
    }
    if (defaults !== undefined) {
      const checked = validateJobDefaults(defaults, `${where}.defaults`, problems, warnings);
      if (checked !== null) group.defaults = checked;
    }
    if (queues !== undefined) {
      if (queues === null || typeof queues !== 'object' || Array.isArray(queues)) {
        problems.push(`${where}.queues: expected a mapping of queue slugs to defaults, got ${describe(queues)}`);
      } else {
        group.queues = {};
        for (const [queue, values] of Object.entries(queues as Record<string, unknown>)) {
          const checked = validateJobDefaults(values, `${where}.queues.${queue}`, problems, warnings);
          if (checked !== null) group.queues[queue] = checked;
        }
      }
    }
    groups.push(group);
  });
  return groups;
}

/** Range of a group's max_pending_jobs. */
const GROUP_MAX_PENDING: IntegerRule = { min: 0, max: 1_000_000_000, unit: 'jobs, 0 for no limit' };

/** Returns the problem of a value outside an integer rule, or null for a valid value. */
function integerProblem(where: string, value: unknown, rule: IntegerRule): string | null {
  if (typeof value === 'number' && Number.isInteger(value) && value >= rule.min && value <= rule.max) return null;
  return `${where}: expected an integer from ${rule.min} to ${rule.max} (${rule.unit}), got ${describe(value)}`;
}

/** Ranges of the job defaults a group or a queue may set. */
const JOB_DEFAULT_KEYS: Record<string, IntegerRule> = {
  priority: { min: -2_147_483_648, max: 2_147_483_647, unit: 'higher runs first' },
  max_attempts: { min: 0, max: 1_000_000, unit: 'attempts, 0 for no limit' },
  retry_delay: { min: 0, max: 31_536_000, unit: 'seconds' },
  retry_max_delay: { min: 0, max: 31_536_000, unit: 'seconds' },
  lease: { min: 1, max: 31_536_000, unit: 'seconds' },
};

/**
 * Validates the job defaults of a group or a queue. Records every problem, warns about
 * unknown keys as for the top level, and returns null when it recorded a problem.
 */
function validateJobDefaults(raw: unknown, where: string, problems: string[], warnings: string[]): JobDefaults | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`${where}: expected a mapping such as {max_attempts: 5, lease: 60}, got ${describe(raw)}`);
    return null;
  }
  const checked: JobDefaults = {};
  const before = problems.length;
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key === 'time_zone') {
      if (typeof value === 'string' && isTimeZone(value)) checked.time_zone = value;
      else problems.push(`${where}.time_zone: expected an IANA time zone such as Europe/Paris, got ${describe(value)}`);
      continue;
    }
    if (key === 'backoff') {
      if (typeof value === 'string' && (BACKOFF_KINDS as readonly string[]).includes(value)) checked.backoff = value as Backoff;
      else problems.push(`${where}.backoff: expected one of ${BACKOFF_KINDS.join(', ')}, got ${describe(value)}`);
      continue;
    }
    const rule = Object.hasOwn(JOB_DEFAULT_KEYS, key) ? JOB_DEFAULT_KEYS[key] : undefined;
    if (rule === undefined) {
      warnings.push(`${where}.${key}: unknown key is ignored; the keys are ${[...Object.keys(JOB_DEFAULT_KEYS), 'backoff', 'time_zone'].join(', ')}`);
      continue;
    }
    const problem = integerProblem(`${where}.${key}`, value, rule);
    if (problem !== null) {
      problems.push(problem);
      continue;
    }
    (checked as Record<string, number>)[key] = value as number;
  }
  return problems.length === before ? checked : null;
}

/** scrypt parameters accepted in a password_hash, with at most 256 MiB of scrypt memory per check. */
const SCRYPT_LIMITS = { minN: 1024, maxN: 1_048_576, maxR: 32, maxP: 16, maxMemoryBytes: 256 * 1024 * 1024 };

/** Returns what is wrong with a password_hash value, or null when scrypt can check it. */
function checkPasswordHash(value: unknown): string | null {
  const match = typeof value === 'string' ? /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(value) : null;
  if (match === null) return 'expected the form scrypt$N$r$p$salt$hash';
  const [n, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (n < SCRYPT_LIMITS.minN || n > SCRYPT_LIMITS.maxN || (n & (n - 1)) !== 0) {
    return `scrypt N must be a power of two from ${SCRYPT_LIMITS.minN} to ${SCRYPT_LIMITS.maxN}, got ${n}`;
  }
  if (r < 1 || r > SCRYPT_LIMITS.maxR) return `scrypt r must be from 1 to ${SCRYPT_LIMITS.maxR}, got ${r}`;
  if (p < 1 || p > SCRYPT_LIMITS.maxP) return `scrypt p must be from 1 to ${SCRYPT_LIMITS.maxP}, got ${p}`;
  if (128 * n * r > SCRYPT_LIMITS.maxMemoryBytes) {
    return `scrypt N * r must need at most ${SCRYPT_LIMITS.maxMemoryBytes / 1024 / 1024} MiB (128 * N * r bytes), got N=${n} r=${r}`;
  }
  if (Buffer.from(match[5], 'base64').length < 16) return 'the hash part must decode to at least 16 bytes';
  return null;
}

function validateUsers(
  raw: unknown,
  groupSlugs: Set<string>,
  problems: string[],
  warnings: string[],
): UserConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push('users: expected a list of {username, password, groups} entries');
    return [];
  }
  const users: UserConfig[] = [];
  const seen = new Set<string>();
  let plainPasswords = 0;
  raw.forEach((entry: unknown, index) => {
    const where = `users[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${where}: expected a mapping with username, password and groups`);
      return;
    }
    const fields = entry as Record<string, unknown>;
    const { username, password, password_hash: passwordHash } = fields;
    if (typeof username !== 'string' || username.length === 0 || /\s/.test(username)) {
      problems.push(`${where}.username: expected a non-empty name without spaces, got ${describe(username)}`);
      return;
    }
    if (seen.has(username)) {
      problems.push(`${where}.username: user "${username}" is declared twice`);
      return;
    }
    seen.add(username);
    const user: UserConfig = { username, groups: [] };
    if (passwordHash !== undefined && password !== undefined) {
      problems.push(`${where}: user "${username}" has both password and password_hash; keep only password_hash`);
      return;
    }
    if (passwordHash !== undefined) {
      const hashProblem = checkPasswordHash(passwordHash);
      if (hashProblem !== null) {
        problems.push(`${where}.password_hash: ${hashProblem} for user "${username}"; make one with "jobatator hash-password"`);
        return;
      }
      user.password_hash = passwordHash as string;
    } else if (typeof password === 'string' && password.length > 0) {
      user.password = password;
      plainPasswords++;
    } else if (typeof password === 'number') {
      user.password = String(password);
      plainPasswords++;
    } else {
      problems.push(`${where}.password: user "${username}" needs a non-empty password or password_hash`);
      return;
    }
    if (!Array.isArray(fields.groups) || fields.groups.some((slug) => typeof slug !== 'string')) {
      problems.push(`${where}.groups: expected a list of group slugs or ["*"] for user "${username}"`);
      return;
    }
    for (const slug of fields.groups as string[]) {
      if (slug !== '*' && !groupSlugs.has(slug)) {
        problems.push(`${where}.groups: user "${username}" names group "${slug}", which is not declared under groups`);
      }
    }
    user.groups = fields.groups as string[];
    users.push(user);
  });
  if (plainPasswords > 0) {
    warnings.push(
      `${plainPasswords} user(s) have a plain-text password; store a password_hash instead (jobatator hash-password)`,
    );
  }
  return users;
}
