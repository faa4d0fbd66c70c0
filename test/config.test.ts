import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LineClient } from './helpers/client';
import { runCli } from './helpers/process';
import { BASE_CONFIG, logEntries, serverSuite, startServer, TestServer, writeConfig } from './helpers/server';

/** A password that appears in every invalid config below and must never be printed. */
const SECRET = 'hunter2-secret';

/** Builds a valid config that each invalid case below breaks in one or two places. */
function validConfig(): Record<string, unknown> {
  return {
    host: '127.0.0.1',
    port: 0,
    web_port: -1,
    shards: 2,
    groups: [{ slug: 'alpha' }, { slug: 'beta' }],
    users: [{ username: 'alice', password: SECRET, groups: ['alpha'] }],
  };
}

const PREFIX = 'jobatator: invalid configuration:\n';

const invalid = suite('invalid config');

invalid('every problem gets its own message', async () => {
  const file = writeConfig(
    [
      'host: 127.0.0.1',
      'port: 70000',
      'web_port: "8952"',
      'test_mode: "yes"',
      'log_level: loud',
      'shards: 2',
      'groups:',
      '  - slug: alpha',
      '  - slug: alpha',
      '  - slug: beta',
      '    shard: 2',
      'users:',
      '  - username: alice',
      `    password: ${SECRET}`,
      '    groups: [gamma]',
      '  - username: bob',
      '    groups: [alpha]',
      '',
    ].join('\n'),
  );
  const result = await runCli(['--config', file]);

  assert.is(result.code, 2);
  assert.is(result.stdout, '');
  assert.is(
    result.stderr,
    PREFIX +
      [
        '  - port: expected an integer from 0 to 65535 (a TCP port), got 70000',
        '  - web_port: expected an integer from -1 to 65535 (a TCP port, or -1 to disable the gateway), got "8952"',
        '  - test_mode: expected true or false, got "yes"',
        '  - log_level: expected one of trace, debug, info, warn, error, fatal, got "loud"',
        '  - groups[1].slug: group "alpha" is declared twice',
        '  - groups[2].shard: expected an integer from 0 to 1 (shards: 2), got 2',
        '  - users[0].groups: user "alice" names group "gamma", which is not declared under groups',
        '  - users[1].password: user "bob" needs a non-empty password or password_hash',
      ].join('\n') +
      '\n',
  );
  assert.not.match(result.stderr, SECRET);
});

invalid('type and range problems are all listed', async () => {
  const file = writeConfig(
    [
      'host: 42',
      'port: -1',
      'web_port: -2',
      'shards: 2',
      'max_line_bytes: 10',
      'delay_policy: SOMETIMES',
      'allow_dispatch: "no"',
      'log_level: 3',
      'groups:',
      '  - slug: alpha',
      '  - slug: beta',
      '    shard: -1',
      '  - slug: "has space"',
      '  - name: gamma',
      'users:',
      '  - username: alice',
      '    password: ""',
      '    groups: [alpha]',
      '  - username: bob',
      `    password_hash: ${SECRET}`,
      '    groups: [alpha]',
      '  - username: carol dee',
      `    password: ${SECRET}`,
      '    groups: [alpha]',
      `  - ${SECRET}`,
      '  - username: dave',
      `    password: ${SECRET}`,
      '    groups: alpha',
      '  - username: bob',
      `    password: ${SECRET}`,
      '    groups: [alpha]',
      '',
    ].join('\n'),
  );
  const result = await runCli(['--config', file]);

  assert.is(result.code, 2);
  assert.is(result.stdout, '');
  assert.is(
    result.stderr,
    PREFIX +
      [
        '  - host: expected an address such as 127.0.0.1, got 42',
        '  - port: expected an integer from 0 to 65535 (a TCP port), got -1',
        '  - web_port: expected an integer from -1 to 65535 (a TCP port, or -1 to disable the gateway), got -2',
        '  - max_line_bytes: expected an integer from 1024 to 1073741824 (bytes), got 10',
        '  - allow_dispatch: expected true or false, got "no"',
        '  - delay_policy: expected "" or "IGNORE", got "SOMETIMES"',
        '  - log_level: expected one of trace, debug, info, warn, error, fatal, got 3',
        '  - groups[1].shard: expected an integer from 0 to 1 (shards: 2), got -1',
        '  - groups[2].slug: expected 1 to 128 letters, digits or _ . : -, got "has space"',
        '  - groups[3].slug: expected 1 to 128 letters, digits or _ . : -, got nothing (the key is missing)',
        '  - users[0].password: user "alice" needs a non-empty password or password_hash',
        '  - users[1].password_hash: expected the form scrypt$N$r$p$salt$hash for user "bob"; make one with "jobatator hash-password"',
        '  - users[2].username: expected a non-empty name without spaces, got "carol dee"',
        '  - users[3]: expected a mapping with username, password and groups',
        '  - users[4].groups: expected a list of group slugs or ["*"] for user "dave"',
        '  - users[5].username: user "bob" is declared twice',
      ].join('\n') +
      '\n',
  );
  assert.not.match(result.stderr, SECRET);
});

invalid('wrong types of single values', async () => {
  const cases: Array<{ what: string; change: (config: Record<string, unknown>) => void; messages: string[] }> = [
    {
      what: 'port as a string and fractional shards',
      change: (config) => {
        config.port = '8962';
        config.shards = 1.5;
        config.groups = [{ slug: 'alpha' }];
      },
      messages: [
        'port: expected an integer from 0 to 65535 (a TCP port), got "8962"',
        'shards: expected an integer from 1 to 256 (threads), got 1.5',
      ],
    },
    {
      what: 'groups as a string',
      change: (config) => (config.groups = 'alpha'),
      messages: [
        'groups: expected a list of {slug} entries',
        'users[0].groups: user "alice" names group "alpha", which is not declared under groups',
      ],
    },
    {
      what: 'users as a mapping',
      change: (config) => (config.users = { alice: SECRET }),
      messages: ['users: expected a list of {username, password, groups} entries'],
    },
  ];
  for (const { what, change, messages } of cases) {
    const config = validConfig();
    change(config);
    const result = await runCli(['--config', writeConfig(config)]);

    assert.is(result.code, 2, what);
    assert.is(result.stdout, '', what);
    assert.is(result.stderr, PREFIX + messages.map((message) => `  - ${message}\n`).join(''), what);
    assert.not.match(result.stderr, SECRET, what);
  }
});

invalid('YAML syntax error names line and column', async () => {
  const cases: Array<{ what: string; text: string; messages: string[] }> = [
    {
      what: 'unclosed quote in a password',
      text: ['users:', '  - username: alice', `    password: "${SECRET}`, '    groups: [alpha]', ''].join('\n'),
      messages: ['YAML syntax error at line 5, column 1: Missing closing "quote (MISSING_CHAR)'],
    },
    {
      what: 'block scalar header and bad escape in passwords',
      text: [
        'users:',
        '  - username: alice',
        `    password: |${SECRET}`,
        '    groups: [alpha]',
        '  - username: bob',
        `    password: "${SECRET}\\q"`,
        '    groups: [alpha]',
        '',
      ].join('\n'),
      messages: [
        'YAML syntax error at line 3, column 16: Block scalar header includes extra characters (UNEXPECTED_TOKEN)',
        'YAML syntax error at line 6, column 30: invalid escape sequence in a double-quoted string (BAD_DQ_ESCAPE)',
      ],
    },
  ];
  for (const { what, text, messages } of cases) {
    const file = writeConfig(text);
    const result = await runCli(['--config', file]);

    assert.is(result.code, 2, what);
    assert.is(result.stdout, '', what);
    assert.is(result.stderr, PREFIX + messages.map((message) => `  - ${file}: ${message}\n`).join(''), what);
    assert.not.match(result.stderr, SECRET, what);
  }
});

invalid('missing config file exits 2', async () => {
  const file = path.join(path.dirname(writeConfig('')), 'missing.yml');
  const result = await runCli(['--config', file]);

  assert.is(result.code, 2);
  assert.is(result.stderr, `${PREFIX}  - cannot read config file ${file} (ENOENT); pass an existing file with --config\n`);
});

invalid.run();

const warnings = serverSuite(
  'config warnings',
  {
    colour: 'blue',
    queue_limit: 5,
    test_mode: false,
    allow_dispatch: false,
    groups: [{ slug: 'group1', defaults: { colour: 'red' } }, { slug: 'group2' }, { slug: 'group3' }],
  },
  { env: { TEST_MODE: '0', ALLOW_DISPATCH: '0' } },
);

warnings('unknown keys only warn', async ({ server }) => {
  const entries = logEntries(server);
  for (const key of ['colour', 'queue_limit']) {
    const warning = entries.filter((entry) => entry.msg === `unknown config key "${key}" is ignored`);
    assert.is(warning.length, 1, key);
    assert.is(warning[0].level, 40, `${key} is logged at warn level`);
  }

  const nested = entries.filter((entry) => String(entry.msg).startsWith('groups[0].defaults.colour: unknown key is ignored;'));
  assert.is(nested.length, 1, 'an unknown key of group defaults warns');
  assert.is(nested[0].level, 40);

  const client = await LineClient.connect(server.port);
  assert.is(await client.request('PING'), 'PONG');
  client.close();
});

warnings('plain passwords log one warning', async ({ server }) => {
  const plain = logEntries(server).filter((entry) => String(entry.msg).includes('plain-text password'));
  assert.is(plain.length, 1);
  assert.is(plain[0].level, 40);
  assert.is(plain[0].msg, '3 user(s) have a plain-text password; store a password_hash instead (jobatator hash-password)');

  const logs = server.logs.join('\n');
  for (const user of BASE_CONFIG.users) assert.not.match(logs, user.password);
});

warnings('test mode and dispatch are off by default', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request("DEBUG_PARTS a 'b c'"), 'Err: test-mode-disabled');
  assert.is(await client.request('ADVANCE_CLOCK 1'), 'Err: test-mode-disabled');
  assert.is(await client.request('DISPATCH'), 'Err: dispatch-disabled');
  client.close();
});

warnings.run();

const HASHED_PASSWORD = 'correct-horse-42';

const hashed = suite<{ server: TestServer; hash: string }>('password_hash and env flags');

hashed.before(async (context) => {
  const result = await runCli(['hash-password'], { input: `${HASHED_PASSWORD}\n` });
  assert.is(result.code, 0, result.stderr);
  context.hash = result.stdout.trim();
  context.server = await startServer(
    {
      test_mode: false,
      allow_dispatch: false,
      users: [{ username: 'hashed', password_hash: context.hash, groups: ['group1'] }],
    },
    { env: { TEST_MODE: '1', ALLOW_DISPATCH: '1' } },
  );
});

hashed.after(async (context) => {
  const code = await context.server.stop();
  assert.is(code, 0);
});

hashed('hash-password prints an scrypt hash', async ({ hash }) => {
  assert.match(hash, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.not.match(hash, HASHED_PASSWORD);

  const again = await runCli(['hash-password'], { input: HASHED_PASSWORD });
  assert.is(again.code, 0);
  assert.is(again.stdout.endsWith('\n'), true);
  assert.is.not(again.stdout.trim(), hash, 'each hash has its own salt');
});

hashed('hash-password without input exits 2', async () => {
  const result = await runCli(['hash-password'], { input: '' });
  assert.is(result.code, 2);
  assert.is(result.stdout, '');
  assert.match(result.stderr, 'no password on stdin');
});

hashed('password_hash user logs in', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request(`AUTH hashed ${HASHED_PASSWORD}`), 'Welcome!');
  assert.is(await client.request('USE_GROUP group1'), 'OK');
  client.close();
});

hashed('wrong password for a hash answers invalid-creds', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request('AUTH hashed correct-horse-43'), 'Err: invalid-creds');
  assert.is(await client.request(`AUTH hashed ${HASHED_PASSWORD}x`), 'Err: invalid-creds');
  assert.is(await client.request('LIST_QUEUES'), 'Err: not-logged');
  client.close();
});

hashed('hashed users log no plain-password warning', async ({ server }) => {
  const plain = logEntries(server).filter((entry) => String(entry.msg).includes('plain-text password'));
  assert.equal(plain, []);
});

hashed('TEST_MODE and ALLOW_DISPATCH env enable features', async ({ server }) => {
  const client = await LineClient.connect(server.port);
  assert.is(await client.request("DEBUG_PARTS a 'b c'"), '["DEBUG_PARTS","a","b c"]');
  assert.is(await client.request('DISPATCH'), 'OK');
  client.close();

  const testModeWarning = logEntries(server).filter((entry) => String(entry.msg).startsWith('test mode is on'));
  assert.is(testModeWarning.length, 1);
});

hashed.run();
