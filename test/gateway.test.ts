import http from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LineClient, parsePush } from './helpers/client';
import { serverSuite, startServer, TestServer } from './helpers/server';

const HTTP_TIMEOUT_MS = 10000;

/** The gateway's `max_line_bytes` in these tests: small enough to exceed cheaply. */
const MAX_BODY_BYTES = 65536;

/** Maximum number of commands in one gateway request. */
const MAX_COMMANDS = 1000;

/** Passwords of the common test users; no gateway reply may contain one. */
const PASSWORDS = ['pass1', 'pass2', 'adminpass'];

interface GatewayError {
  code: string;
  message: string;
}

interface GatewayBody {
  success: boolean;
  data: unknown[];
  errors: GatewayError[];
}

interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

interface HttpOptions {
  method?: string;
  path?: string;
  body?: string;
  headers?: Record<string, string>;
}

/**
 * Sends one HTTP request on a fresh connection and resolves with the whole response. A
 * socket error after the response ended is ignored: the gateway closes the connection
 * while a client still uploads a body that is over the limit.
 */
function httpRequest(port: number, options: HttpOptions = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | null, reply?: HttpReply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== null) reject(error);
      else resolve(reply as HttpReply);
    };
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/gateway',
        method: options.method ?? 'POST',
        headers: options.headers,
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          finish(null, {
            status: response.statusCode ?? 0,
            headers: response.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    const timer = setTimeout(() => {
      request.destroy();
      finish(new Error(`no HTTP response within ${HTTP_TIMEOUT_MS} ms`));
    }, HTTP_TIMEOUT_MS);
    request.on('error', (error) => finish(error));
    request.end(options.body);
  });
}

/** Parses a gateway response body and checks that it has the documented shape. */
function parseBody(reply: HttpReply): GatewayBody {
  let body: GatewayBody;
  try {
    body = JSON.parse(reply.text) as GatewayBody;
  } catch {
    throw new Error(`gateway answered ${reply.status} with a body that is not JSON: "${reply.text.slice(0, 200)}"`);
  }
  assert.type(body.success, 'boolean');
  assert.ok(Array.isArray(body.data), 'data is a list');
  assert.ok(Array.isArray(body.errors), 'errors is a list');
  return body;
}

/** Posts commands to the gateway. */
async function postCommands(
  port: number,
  commands: string[],
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: GatewayBody; text: string }> {
  const reply = await httpRequest(port, {
    body: JSON.stringify({ commands }),
    headers: { 'Content-Type': 'application/json', ...headers },
  });
  return { ...reply, body: parseBody(reply) };
}

/** Sends commands one by one on a new TCP connection and returns the reply lines. */
async function tcpReplies(port: number, commands: string[]): Promise<string[]> {
  const client = await LineClient.connect(port);
  const replies: string[] = [];
  try {
    for (const command of commands) replies.push(await client.request(command));
  } finally {
    client.close();
  }
  return replies;
}

const gateway = suite<{ server: TestServer; webPort: number }>('gateway');

gateway.before(async (context) => {
  context.server = await startServer({ max_line_bytes: MAX_BODY_BYTES });
  assert.type(context.server.webPort, 'number');
  context.webPort = context.server.webPort as number;
});

gateway.after(async (context) => {
  const code = await context.server.stop();
  assert.is(code, 0);
});

gateway('runs commands in order on one session', async ({ webPort }) => {
  const reply = await postCommands(webPort, ['AUTH user1 pass1', 'USE_GROUP group1', 'LIST_QUEUES', 'PING']);

  assert.is(reply.status, 200);
  assert.is(reply.headers['content-type'], 'application/json');
  assert.is(reply.body.success, true);
  assert.equal(reply.body.errors, []);
  assert.is(reply.body.data.length, 4);
  assert.is(reply.body.data[0], 'Welcome!');
  assert.is(reply.body.data[1], 'OK');
  assert.ok(Array.isArray(reply.body.data[2]), 'LIST_QUEUES is embedded as a JSON list, not a string');
  assert.is(reply.body.data[3], 'PONG');
});

gateway('JSON replies are embedded as JSON', async ({ server, webPort }) => {
  const reply = await postCommands(webPort, [
    'AUTH user1 pass1',
    'USE_GROUP group1',
    'PUBLISH gw-embed mail {"to":"a"}',
    'LIST_JOBS gw-embed',
    'CURRENT_SESSION',
  ]);

  assert.is(reply.status, 200);
  assert.equal(reply.body.errors, []);
  assert.is(reply.body.data.length, 5);
  const published = reply.body.data[2] as string;
  assert.match(published, /^OK#[A-Za-z0-9]{16}$/);
  const id = published.slice(3);
  assert.equal(reply.body.data[3], [
    {
      ID: id,
      State: 'pending',
      Type: 'mail',
      Payload: '{"to":"a"}',
      Attempts: 0,
      StartedProcessingAt: '0001-01-01T00:00:00Z',
      EndProcessingAt: '0001-01-01T00:00:00Z',
      Priority: 0,
      MaxAttempts: 25,
    },
  ]);
  const session = reply.body.data[4] as Record<string, unknown>;
  assert.is(session.Username, 'user1');
  assert.is(session.CurrentGroup, 'group1');
  assert.is(session.IsWorker, false);
  assert.equal(session.Groups, ['group1']);

  const [, , listing] = await tcpReplies(server.port, ['AUTH user1 pass1', 'USE_GROUP group1', 'LIST_JOBS gw-embed']);
  assert.equal(JSON.parse(listing), reply.body.data[3]);
});

gateway('failed command answers 400 without its reply', async ({ webPort }) => {
  const reply = await postCommands(webPort, ['AUTH user1 bad', 'PING']);

  assert.is(reply.status, 400);
  assert.equal(reply.body, {
    success: false,
    data: ['PONG'],
    errors: [{ code: 'invalid-creds', message: '' }],
  });
});

gateway('error detail after ; becomes the message', async ({ server, webPort }) => {
  const commands = ['AUTH user1 pass1', 'USE_GROUP group1', "RECURRENT_JOB gw-cron report 'not a cron'"];
  const reply = await postCommands(webPort, commands);
  const tcp = await tcpReplies(server.port, commands);

  assert.is(reply.status, 400);
  assert.is(reply.body.success, false);
  assert.equal(reply.body.data, ['Welcome!', 'OK']);
  assert.is(reply.body.errors.length, 1);
  const [error] = reply.body.errors;
  assert.is(error.code, 'invalid-cron');
  assert.ok(error.message.length > 0, 'the parser message is kept');
  assert.not.match(error.message, /^;/);
  assert.match(tcp[2], /^Err: invalid-cron;/);
  assert.is(`Err: ${error.code};${error.message}`, tcp[2]);
});

gateway('login and group checks match TCP', async ({ server, webPort }) => {
  const cases: Array<{ commands: string[]; data: unknown[]; codes: string[] }> = [
    { commands: ['LIST_QUEUES'], data: [], codes: ['not-logged'] },
    { commands: ['USE_GROUP group1', 'PING'], data: ['PONG'], codes: ['not-logged'] },
    { commands: ['AUTH user1 pass1', 'LIST_QUEUES'], data: ['Welcome!'], codes: ['group-non-selected'] },
    { commands: ['AUTH user1 pass1', 'USE_GROUP group2'], data: ['Welcome!'], codes: ['forbidden-group'] },
    { commands: ['AUTH user1 pass1', 'USE_GROUP no-such-group'], data: ['Welcome!'], codes: ['unknown-group'] },
    {
      commands: ['AUTH user1 pass1', 'USE_GROUP group2', 'PUBLISH gw-checks t p'],
      data: ['Welcome!'],
      codes: ['forbidden-group', 'group-non-selected'],
    },
    {
      commands: ['AUTH user1 pass1', 'USE_GROUP group1', 'PUBLISH gw-checks t'],
      data: ['Welcome!', 'OK'],
      codes: ['wrong-numbers-arguments'],
    },
    { commands: ['NO_SUCH_COMMAND'], data: [], codes: ['unknown-command'] },
  ];
  for (const { commands, data, codes } of cases) {
    const label = commands.join(' | ');
    const reply = await postCommands(webPort, commands);
    assert.is(reply.status, 400, label);
    assert.is(reply.body.success, false, label);
    assert.equal(reply.body.data, data, label);
    assert.equal(
      reply.body.errors,
      codes.map((code) => ({ code, message: '' })),
      label,
    );

    const tcp = await tcpReplies(server.port, commands);
    assert.equal(
      tcp.filter((line) => line.startsWith('Err: ')),
      codes.map((code) => `Err: ${code}`),
      `TCP: ${label}`,
    );
  }
});

gateway('each request is a new session', async ({ webPort }) => {
  const first = await postCommands(webPort, ['AUTH user1 pass1', 'USE_GROUP group1']);
  assert.is(first.status, 200);

  const second = await postCommands(webPort, ['LIST_QUEUES']);
  assert.is(second.status, 400);
  assert.equal(second.body.errors, [{ code: 'not-logged', message: '' }]);
});

gateway('SUBSCRIBE, QUIT and STOP_SERVER answer gateway-unsupported', async ({ server, webPort }) => {
  const reply = await postCommands(webPort, [
    'AUTH admin adminpass',
    'USE_GROUP group1',
    'SUBSCRIBE gw-subscribe',
    'QUIT',
    'STOP_SERVER',
    'PING',
  ]);

  assert.is(reply.status, 400);
  assert.is(reply.body.success, false);
  assert.equal(reply.body.data, ['Welcome!', 'OK', 'PONG']);
  assert.equal(
    reply.body.errors.map((error) => error.code),
    ['gateway-unsupported', 'gateway-unsupported', 'gateway-unsupported'],
  );
  for (const [index, name] of ['SUBSCRIBE', 'QUIT', 'STOP_SERVER'].entries()) {
    assert.match(reply.body.errors[index].message, name);
  }

  // The server is still running and SUBSCRIBE created no queue.
  const tcp = await tcpReplies(server.port, ['PING', 'AUTH user1 pass1', 'USE_GROUP group1', 'LIST_QUEUES']);
  assert.is(tcp[0], 'PONG');
  const queues = JSON.parse(tcp[3]) as Array<{ Slug: string }>;
  assert.not.ok(queues.some((queue) => queue.Slug === 'gw-subscribe'), 'SUBSCRIBE created no queue');
});

gateway('GET answers 405', async ({ webPort }) => {
  const reply = await httpRequest(webPort, { method: 'GET' });
  const body = parseBody(reply);

  assert.is(reply.status, 405);
  assert.is(body.success, false);
  assert.equal(body.data, []);
  assert.is(body.errors.length, 1);
  assert.is(body.errors[0].code, 'invalid-request');
  assert.match(body.errors[0].message, 'GET');
  assert.match(body.errors[0].message, 'POST /gateway');
});

gateway('unknown path answers 404', async ({ webPort }) => {
  for (const method of ['POST', 'GET']) {
    const reply = await httpRequest(webPort, { method, path: '/gateway/extra', body: method === 'POST' ? '{"commands":["PING"]}' : undefined });
    const body = parseBody(reply);

    assert.is(reply.status, 404, method);
    assert.is(body.success, false);
    assert.equal(body.data, []);
    assert.is(body.errors.length, 1);
    assert.is(body.errors[0].code, 'invalid-request');
    assert.match(body.errors[0].message, '/gateway/extra');
  }
});

gateway('invalid bodies answer 400', async ({ webPort }) => {
  const cases: Array<{ body: string; message: RegExp }> = [
    { body: 'PING', message: /not valid JSON/ },
    { body: '', message: /not valid JSON/ },
    { body: '{"commands":["PING"]', message: /not valid JSON/ },
    { body: '{"cmds":["PING"]}', message: /"commands", a list of command strings/ },
    { body: '{"commands":"PING"}', message: /"commands", a list of command strings/ },
    { body: '{"commands":["PING",1]}', message: /"commands", a list of command strings/ },
    { body: '{"commands":[["PING"]]}', message: /"commands", a list of command strings/ },
    { body: 'null', message: /"commands", a list of command strings/ },
    { body: '["PING"]', message: /"commands", a list of command strings/ },
    { body: '"PING"', message: /"commands", a list of command strings/ },
  ];
  for (const { body: requestBody, message } of cases) {
    const reply = await httpRequest(webPort, { body: requestBody });
    const body = parseBody(reply);

    assert.is(reply.status, 400, requestBody);
    assert.is(body.success, false, requestBody);
    assert.equal(body.data, [], requestBody);
    assert.is(body.errors.length, 1, requestBody);
    assert.is(body.errors[0].code, 'invalid-request', requestBody);
    assert.match(body.errors[0].message, message, requestBody);
  }
});

gateway('more than 1000 commands answers 400', async ({ webPort }) => {
  const atLimit = await postCommands(webPort, new Array<string>(MAX_COMMANDS).fill('PING'));
  assert.is(atLimit.status, 200);
  assert.is(atLimit.body.data.length, MAX_COMMANDS);
  assert.ok(atLimit.body.data.every((reply) => reply === 'PONG'), 'every PING answers PONG');

  const overLimit = await postCommands(webPort, new Array<string>(MAX_COMMANDS + 1).fill('PING'));
  assert.is(overLimit.status, 400);
  assert.is(overLimit.body.success, false);
  assert.equal(overLimit.body.data, []);
  assert.is(overLimit.body.errors.length, 1);
  assert.is(overLimit.body.errors[0].code, 'invalid-request');
  assert.match(overLimit.body.errors[0].message, `at most ${MAX_COMMANDS} commands, got ${MAX_COMMANDS + 1}`);
});

gateway('body over max_line_bytes answers 400', async ({ webPort }) => {
  // A JSON string of this length makes the body exactly the limit.
  const envelope = JSON.stringify({ commands: ['PING', ''] }).length;
  const atLimit = JSON.stringify({ commands: ['PING', 'PING'.padEnd(MAX_BODY_BYTES - envelope, 'x')] });
  assert.is(Buffer.byteLength(atLimit), MAX_BODY_BYTES);
  const accepted = parseBody(await httpRequest(webPort, { body: atLimit }));
  assert.equal(accepted.data, ['PONG'], 'a body of exactly max_line_bytes is read');
  assert.equal(accepted.errors, [{ code: 'unknown-command', message: '' }]);

  for (const size of [MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES]) {
    const overLimit = JSON.stringify({ commands: ['PING', 'PING'.padEnd(size - envelope, 'x')] });
    assert.is(Buffer.byteLength(overLimit), size);
    const reply = await httpRequest(webPort, { body: overLimit });
    const body = parseBody(reply);

    assert.is(reply.status, 400, `${size} bytes`);
    assert.is(body.success, false);
    assert.equal(body.data, [], 'no command of an oversized body runs');
    assert.is(body.errors.length, 1);
    assert.is(body.errors[0].code, 'invalid-request');
    assert.match(body.errors[0].message, `max_line_bytes (${MAX_BODY_BYTES} bytes)`);
  }
});

gateway('Referer origin is echoed for CORS', async ({ webPort }) => {
  const referer = { Referer: 'http://app.example:8080/dashboard/jobs?tab=1' };

  const ok = await postCommands(webPort, ['PING'], referer);
  assert.is(ok.status, 200);
  assert.is(ok.headers['access-control-allow-origin'], 'http://app.example:8080');

  const failed = await postCommands(webPort, ['LIST_QUEUES'], referer);
  assert.is(failed.status, 400);
  assert.is(failed.headers['access-control-allow-origin'], 'http://app.example:8080');

  const rejectedGet = await httpRequest(webPort, { method: 'GET', headers: referer });
  assert.is(rejectedGet.status, 405);
  assert.is(rejectedGet.headers['access-control-allow-origin'], 'http://app.example:8080');

  const withoutReferer = await postCommands(webPort, ['PING']);
  assert.is(withoutReferer.headers['access-control-allow-origin'], undefined);

  const invalidReferer = await postCommands(webPort, ['PING'], { Referer: 'not a url' });
  assert.is(invalidReferer.status, 200);
  assert.is(invalidReferer.headers['access-control-allow-origin'], undefined);
});

gateway('published job reaches a TCP subscriber', async ({ server, webPort }) => {
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request('SUBSCRIBE gw-push'), 'OK');

  const reply = await postCommands(webPort, ['AUTH user1 pass1', 'USE_GROUP group1', 'PUBLISH gw-push mail {"to":"b"}']);
  assert.is(reply.status, 200);
  const published = reply.body.data[2] as string;
  assert.match(published, /^OK#[A-Za-z0-9]{16}$/);
  const id = published.slice(3);

  const job = parsePush(await worker.next());
  assert.is(job.ID, id);
  assert.is(job.Type, 'mail');
  assert.is(job.Payload, '{"to":"b"}');
  assert.is(job.State, 'in-progress');
  assert.is(await worker.request(`UPDATE_JOB ${id} done`), 'OK');
  worker.close();
});

gateway('replies never contain passwords', async ({ server, webPort }) => {
  const worker = await LineClient.login(server.port);
  assert.is(await worker.request('SUBSCRIBE gw-secret'), 'OK');
  const other = await LineClient.login(server.port, 'user2', 'pass2', 'group2');

  const listings = [
    'LIST_QUEUES',
    'LIST_SESSIONS',
    'CURRENT_SESSION',
    'HEALTH',
    'DEBUG_JSON',
    'LIST_JOBS gw-secret',
    'LIST_RECURRENT_JOBS gw-secret',
  ];
  const asAdmin = await postCommands(webPort, ['AUTH admin adminpass', 'USE_GROUP group1', ...listings]);
  assert.is(asAdmin.status, 200, asAdmin.text.slice(0, 300));
  const queues = asAdmin.body.data[2] as Array<{ Slug: string; Workers: Array<{ Username: string }> }>;
  const queue = queues.find((entry) => entry.Slug === 'gw-secret');
  assert.ok(queue !== undefined, 'LIST_QUEUES lists the queue');
  assert.equal(
    queue?.Workers.map((entry) => entry.Username),
    ['user1'],
    'LIST_QUEUES lists the subscribed worker',
  );

  const asUser = await postCommands(webPort, ['AUTH user1 pass1', 'USE_GROUP group1', ...listings]);
  assert.is(asUser.status, 200, asUser.text.slice(0, 300));

  const failedLogin = await postCommands(webPort, ['AUTH user1 guessed-secret']);
  assert.is(failedLogin.status, 400);

  for (const text of [asAdmin.text, asUser.text]) {
    for (const password of PASSWORDS) assert.not.match(text, password);
    assert.not.match(text, '"Password"');
  }
  assert.not.match(failedLogin.text, 'guessed-secret');
  worker.close();
  other.close();
});


gateway('lone surrogate answers invalid-utf8', async ({ server, webPort }) => {
  const { status, body } = await postCommands(webPort, ['AUTH user1 pass1', 'USE_GROUP group1', 'PUBLISH gw-surrogate t a\ud800b']);
  assert.is(status, 400);
  assert.equal(body.data, ['Welcome!', 'OK']);
  assert.is(body.errors.length, 1);
  assert.is(body.errors[0].code, 'invalid-utf8');
  const replies = await tcpReplies(server.port, ['AUTH user1 pass1', 'USE_GROUP group1', 'LIST_JOBS gw-surrogate']);
  assert.is(replies[2], 'Err: unknown-queue');
});

gateway.run();

const small = serverSuite('gateway response limit', { max_reply_bytes: 4096 });

small('response past max_reply_bytes keeps earlier replies and stops', async ({ server }) => {
  const webPort = server.webPort as number;
  const setup = await postCommands(webPort, ['AUTH user1 pass1', 'USE_GROUP group1', `PUBLISH gw-big t ${'x'.repeat(1000)}`]);
  assert.is(setup.status, 200);
  const listings = Array.from({ length: 20 }, () => 'LIST_JOBS gw-big');
  const { status, body } = await postCommands(webPort, ['AUTH user1 pass1', 'USE_GROUP group1', 'PUBLISH gw-kept t x', ...listings, 'PUBLISH gw-after t x']);
  assert.is(status, 400);
  assert.is(body.success, false);

  // Each listing is about 1.2 KB, so the fourth passes 4096 bytes: it is left out, and the
  // 17 commands after it do not run.
  assert.is(body.data.length, 6);
  assert.equal(body.data.slice(0, 2), ['Welcome!', 'OK']);
  assert.match(body.data[2] as string, /^OK#[A-Za-z0-9]{16}$/);
  for (const listing of body.data.slice(3)) assert.ok(Array.isArray(listing));
  assert.equal(body.errors.map((error) => error.code), ['reply-too-large', 'reply-too-large']);
  assert.match(body.errors[0].message, /^command 7 \(LIST_JOBS\) ran, but its reply would bring the response past max_reply_bytes \(4096 bytes\)/);
  assert.match(body.errors[1].message, /^the last 17 of 24 commands did not run/);

  const replies = await tcpReplies(server.port, ['AUTH user1 pass1', 'USE_GROUP group1', 'LIST_QUEUES']);
  const queues = JSON.parse(replies[2]) as Array<{ Slug: string }>;
  assert.equal(queues.map((queue) => queue.Slug), ['gw-big', 'gw-kept']);
});

small.run();

const disabled = serverSuite('gateway disabled', { web_port: -1 });

disabled('web_port -1 starts no gateway', async ({ server }) => {
  assert.is(server.webPort, null);
  const line = server.logs.find((entry) => entry.includes('"msg":"listening"')) as string;
  const listening = JSON.parse(line) as Record<string, unknown>;
  assert.ok('web_port' in listening, 'the listening line names web_port');
  assert.is(listening.web_port, null);

  const client = await LineClient.connect(server.port);
  assert.is(await client.request('PING'), 'PONG');
  client.close();
});

disabled.run();
