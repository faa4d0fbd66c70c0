import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from './helpers/process';
import { logEntries, spawnServer, startServer, writeConfig } from './helpers/server';

const PREFIX = 'jobatator: invalid configuration:\n';
const SALT = 'c2FsdHNhbHRzYWx0c2FsdA==';
const HASH = 'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=';

function baseConfig(users: unknown[]): Record<string, unknown> {
  return { host: '127.0.0.1', port: 0, web_port: -1, shards: 1, groups: [{ slug: 'alpha' }], users };
}

async function problems(config: unknown): Promise<string> {
  const result = await runCli(['--config', writeConfig(config)]);
  assert.is(result.code, 2, result.stderr);
  assert.ok(result.stderr.startsWith(PREFIX), result.stderr);
  return result.stderr.slice(PREFIX.length);
}

const checks = suite('config checks');

checks('scrypt settings out of range are rejected', async () => {
  const cases: Array<[string, string]> = [
    [`scrypt$1$8$1$${SALT}$${HASH}`, 'scrypt N must be a power of two from 1024 to 1048576, got 1'],
    [`scrypt$999999999$8$1$${SALT}$${HASH}`, 'scrypt N must be a power of two from 1024 to 1048576, got 999999999'],
    [`scrypt$3000$8$1$${SALT}$${HASH}`, 'scrypt N must be a power of two from 1024 to 1048576, got 3000'],
    [`scrypt$16384$0$1$${SALT}$${HASH}`, 'scrypt r must be from 1 to 32, got 0'],
    [`scrypt$16384$8$99$${SALT}$${HASH}`, 'scrypt p must be from 1 to 16, got 99'],
    [`scrypt$1048576$32$1$${SALT}$${HASH}`, 'scrypt N * r must need at most 256 MiB (128 * N * r bytes), got N=1048576 r=32'],
    [`scrypt$16384$8$1$${SALT}$aGFzaA==`, 'the hash part must decode to at least 16 bytes'],
  ];
  for (const [hash, message] of cases) {
    const stderr = await problems(baseConfig([{ username: 'alice', password_hash: hash, groups: ['alpha'] }]));
    assert.is(stderr, `  - users[0].password_hash: ${message} for user "alice"; make one with "jobatator hash-password"\n`);
  }
});

checks('bad job defaults of a group are rejected', async () => {
  const users = [{ username: 'alice', password: 'secret', groups: ['alpha'] }];
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ defaults: { lease: 0 } }, 'groups[0].defaults.lease: expected an integer from 1 to 31536000 (seconds), got 0'],
    [{ queues: { mail: { time_zone: 'Mars/Olympus' } } }, 'groups[0].queues.mail.time_zone: expected an IANA time zone such as Europe/Paris, got "Mars/Olympus"'],
    [{ queues: { mail: { backoff: 'linear' } } }, 'groups[0].queues.mail.backoff: expected one of exponential, fixed, got "linear"'],
    [{ queues: [1] }, 'groups[0].queues: expected a mapping of queue slugs to defaults, got [1]'],
    [{ max_pending_jobs: -1 }, 'groups[0].max_pending_jobs: expected an integer from 0 to 1000000000 (jobs, 0 for no limit), got -1'],
  ];
  for (const [group, message] of cases) {
    const stderr = await problems({ ...baseConfig(users), groups: [{ slug: 'alpha', ...group }] });
    assert.is(stderr, `  - ${message}\n`);
  }
});

checks('every problem of a group is listed at once', async () => {
  const config = baseConfig([{ username: 'alice', password: 'secret', groups: ['alpha'] }]);
  config.groups = [{ slug: 'alpha', shard: 5, max_pending_jobs: -1, defaults: { lease: 0, colour: 'red', time_zone: 'Mars/Base' }, queues: { q: { max_attempts: -1 } } }];
  const stderr = await problems(config);
  assert.equal(stderr.split('\n').filter((line) => line !== ''), [
    '  - groups[0].shard: expected an integer from 0 to 0 (shards: 1), got 5',
    '  - groups[0].max_pending_jobs: expected an integer from 0 to 1000000000 (jobs, 0 for no limit), got -1',
    '  - groups[0].defaults.lease: expected an integer from 1 to 31536000 (seconds), got 0',
    '  - groups[0].defaults.time_zone: expected an IANA time zone such as Europe/Paris, got "Mars/Base"',
    '  - groups[0].queues.q.max_attempts: expected an integer from 0 to 1000000 (attempts, 0 for no limit), got -1',
  ]);
});

checks('password and password_hash together are rejected', async () => {
  const stderr = await problems(
    baseConfig([{ username: 'alice', password: 'plain-secret', password_hash: `scrypt$16384$8$1$${SALT}$${HASH}`, groups: ['alpha'] }]),
  );
  assert.is(stderr, '  - users[0]: user "alice" has both password and password_hash; keep only password_hash\n');
  assert.not.ok(stderr.includes('plain-secret'));
});

checks('bad shard does not hide its group', async () => {
  const config = baseConfig([{ username: 'alice', password: 'secret', groups: ['alpha'] }]);
  config.groups = [{ slug: 'alpha', shard: 5 }];
  const stderr = await problems(config);
  assert.is(stderr, '  - groups[0].shard: expected an integer from 0 to 0 (shards: 1), got 5\n');
});

checks('group shard with invalid shards', async () => {
  const config = baseConfig([{ username: 'alice', password: 'secret', groups: ['alpha', 'beta'] }]);
  config.shards = 300;
  config.groups = [
    { slug: 'alpha', shard: 1 },
    { slug: 'beta', shard: -1 },
  ];
  const stderr = await problems(config);
  const lines = stderr.split('\n').filter((line) => line !== '');
  assert.is(lines.length, 2, stderr);
  assert.match(lines[0], /^ {2}- shards: expected an integer from 1 to 256 .*got 300$/);
  assert.is(lines[1], '  - groups[1].shard: expected an integer of at least 0, got -1');
});

checks('YAML alias bomb gets one clear error', async () => {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let level = 1; level < 9; level++) {
    const previous = String.fromCharCode(96 + level);
    const name = String.fromCharCode(97 + level);
    lines.push(`${name}: &${name} [*${previous},*${previous},*${previous},*${previous},*${previous},*${previous},*${previous},*${previous},*${previous},*${previous}]`);
  }
  const result = await runCli(['--config', writeConfig(lines.join('\n'))]);
  assert.is(result.code, 2);
  assert.match(result.stderr, /the YAML cannot be expanded \(.*\); remove repeated aliases\n$/);
  assert.not.match(result.stderr, /\n\s+at /);
});

checks('config without users warns', async () => {
  const server = await startServer({ users: [] });
  const warnings = logEntries(server).filter((entry) => entry.level === 40).map((entry) => entry.msg);
  assert.ok(warnings.includes('no users are configured, so no client can log in; add entries under users'), JSON.stringify(warnings));
  assert.is(await server.stop(), 0);
});

checks('--web-port -1 disables the gateway', async () => {
  const file = writeConfig(baseConfig([{ username: 'alice', password: 'secret', groups: ['alpha'] }]));
  const server = await spawnServer(['--config', file, '--web-port', '-1']);
  assert.is(server.webPort, null);
  assert.is(await server.stop(), 0);
});

checks.run();
