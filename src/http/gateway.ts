import { isUtf8 } from 'node:buffer';
import http from 'node:http';
import { tokenize } from '../net/tokenize';
import { ErrorCode, errorReply } from '../protocol/errors';
import { OrderedOutput } from '../protocol/ordered-output';
import { Client, Session } from '../protocol/session';
import type { JobatatorServer } from '../server';

interface GatewayError {
  code: string;
  message: string;
}

interface GatewayResponse {
  success: boolean;
  data: unknown[];
  errors: GatewayError[];
}

/** Bytes past max_line_bytes, as a multiple of it, read and dropped before an oversized body is cut off. */
const DISCARD_FACTOR = 4;

/** Maximum number of commands in one gateway request. */
const MAX_COMMANDS = 1000;

/** A gateway request's session: it runs the request's commands in order, then ends. */
class GatewayClient implements Client {
  readonly session = new Session();
  readonly output: OrderedOutput;
  readonly isGateway = true;
  readonly acceptsPushes = false;
  readonly replies: string[] = [];
  /** Bytes of the replies so far, to bound the whole response. */
  replyBytes = 0;
  private expected = 0;
  private onComplete: (() => void) | undefined;

  constructor(
    readonly id: number,
    readonly address: string,
  ) {
    this.output = new OrderedOutput((line) => {
      this.replies.push(line);
      this.replyBytes += line.length;
      if (this.replies.length >= this.expected) this.onComplete?.();
    });
  }

  closeAfterReplies(): void {
    // The session ends with its HTTP request anyway.
  }

  /** Resolves once `count` replies have been written. */
  waitForReplies(count: number): Promise<void> {
    this.expected = count;
    if (this.replies.length >= count) return Promise.resolve();
    return new Promise((resolve) => {
      this.onComplete = resolve;
    });
  }
}

/** Splits a reply into the gateway's `data` or `errors` entry. JSON replies are embedded. */
function collect(reply: string, response: GatewayResponse): void {
  if (reply.startsWith('Err: ')) {
    const body = reply.slice('Err: '.length);
    const separator = body.indexOf(';');
    response.errors.push(
      separator < 0 ? { code: body, message: '' } : { code: body.slice(0, separator), message: body.slice(separator + 1) },
    );
    return;
  }
  if (reply.startsWith('[') || reply.startsWith('{')) {
    try {
      response.data.push(JSON.parse(reply));
      return;
    } catch {
      // Not JSON after all (a payload-like reply): keep it as a string.
    }
  }
  response.data.push(reply);
}

function badRequest(message: string, code: string = ErrorCode.INVALID_REQUEST): GatewayResponse {
  return { success: false, data: [], errors: [{ code, message }] };
}

function parseCommands(body: string): string[] | GatewayResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return badRequest('the body is not valid JSON; send {"commands": ["AUTH user password", ...]}');
  }
  const commands = (parsed as { commands?: unknown } | null)?.commands;
  if (!Array.isArray(commands) || commands.some((command) => typeof command !== 'string')) {
    return badRequest('expected a JSON object with "commands", a list of command strings');
  }
  if (commands.length > MAX_COMMANDS) {
    return badRequest(`a request may carry at most ${MAX_COMMANDS} commands, got ${commands.length}`);
  }
  return commands as string[];
}

/**
 * Ends a request whose replies passed max_reply_bytes after command `index`. The replies
 * before it stay, so a client keeps the ids of the jobs it published. The reply that passed
 * the limit stays too if it is a status line, which is short; a JSON reply is replaced by
 * an error. The commands after it do not run, and one more error reports that.
 */
function stopAtLimit(client: GatewayClient, commands: string[], index: number, maxBytes: number): void {
  const last = client.replies.length - 1;
  const name = commands[index].trim().split(' ')[0].slice(0, 40);
  if (client.replies[last].startsWith('{') || client.replies[last].startsWith('[')) {
    client.replies[last] = errorReply(
      ErrorCode.REPLY_TOO_LARGE,
      `command ${index + 1} (${name}) ran, but its reply would bring the response past max_reply_bytes (${maxBytes} bytes); run it in a request of its own, page it, or use TCP`,
    );
  }
  const left = commands.length - index - 1;
  if (left > 0) {
    client.replies.push(
      errorReply(ErrorCode.REPLY_TOO_LARGE, `the last ${left} of ${commands.length} commands did not run, because the replies reached max_reply_bytes (${maxBytes} bytes); send them in another request`),
    );
  }
}

async function runCommands(server: JobatatorServer, client: GatewayClient, commands: string[]): Promise<GatewayResponse> {
  server.clients.set(client.id, client);
  const maxBytes = server.config.max_reply_bytes;
  try {
    // Commands run one at a time, each after the previous reply, so the response can be
    // bounded by max_reply_bytes as it grows.
    for (const [index, command] of commands.entries()) {
      const args = tokenize(command);
      if (!command.isWellFormed()) {
        client.output.send(errorReply(ErrorCode.INVALID_UTF8, 'the command contains a lone UTF-16 surrogate (\\ud800 to \\udfff), which is not valid UTF-8 text'));
      } else if (args === null) {
        client.output.send(errorReply(ErrorCode.INVALID_SYNTAX, 'a quoted argument is not closed'));
      } else if (args.length === 0) {
        client.output.send(errorReply(ErrorCode.UNKNOWN_COMMAND));
      } else {
        const barrier = server.dispatcher.execute(client, args);
        if (barrier !== undefined) await barrier;
      }
      await client.waitForReplies(index + 1);
      if (client.replyBytes > maxBytes) {
        stopAtLimit(client, commands, index, maxBytes);
        break;
      }
    }
  } finally {
    server.release(client);
  }
  const response: GatewayResponse = { success: true, data: [], errors: [] };
  for (const reply of client.replies) collect(reply, response);
  response.success = response.errors.length === 0;
  return response;
}

function corsHeaders(request: http.IncomingMessage): Record<string, string> {
  const referer = request.headers.referer;
  if (referer === undefined) return {};
  try {
    return { 'Access-Control-Allow-Origin': new URL(referer).origin, Vary: 'Referer' };
  } catch {
    return {};
  }
}

/**
 * Starts the HTTP gateway: `POST /gateway` with `{"commands": [...]}` runs the commands in
 * order on one session, in-process, with the same checks as TCP, and replies
 * `{"success", "data", "errors"}`, with status 400 when any command failed.
 */
export function startGateway(server: JobatatorServer, host: string, port: number): Promise<http.Server> {
  const maxBody = server.config.max_line_bytes;
  const httpServer = http.createServer((request, response) => {
    const headers: Record<string, string> = { ...corsHeaders(request), 'Content-Type': 'application/json' };
    const send = (status: number, body: GatewayResponse): void => {
      let text: string;
      try {
        text = JSON.stringify(body);
      } catch (error) {
        server.logger.error({ err: error }, 'gateway response could not be encoded');
        status = 500;
        text = JSON.stringify({ success: false, data: [], errors: [{ code: ErrorCode.INTERNAL_ERROR, message: 'see the server log' }] });
      }
      response.writeHead(status, headers);
      response.end(text);
    };
    if (request.url?.split('?')[0] !== '/gateway') {
      send(404, badRequest(`unknown path ${JSON.stringify(request.url)}; use POST /gateway`));
      return;
    }
    if (request.method === 'OPTIONS') {
      response.writeHead(204, { ...headers, 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'Content-Type' });
      response.end();
      return;
    }
    if (request.method !== 'POST') {
      send(405, badRequest(`method ${request.method} is not allowed; use POST /gateway`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody && !rejected) {
        rejected = true;
        chunks.length = 0;
        // Keep reading (and dropping) the body, so the client gets the 400 instead of a
        // reset; a body far past the limit is cut off.
        headers['Connection'] = 'close';
        send(400, badRequest(`the body exceeds max_line_bytes (${maxBody} bytes)`));
      }
      if (rejected) {
        if (size > maxBody * DISCARD_FACTOR) request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (rejected) return;
      const body = Buffer.concat(chunks);
      // Decoding would replace invalid bytes with U+FFFD and so change payloads silently.
      if (!isUtf8(body)) {
        send(400, badRequest('the body is not valid UTF-8; send the JSON document as UTF-8'));
        return;
      }
      const commands = parseCommands(body.toString('utf8'));
      if (!Array.isArray(commands)) {
        send(400, commands);
        return;
      }
      const address = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
      const client = new GatewayClient(server.newClientId(), address);
      runCommands(server, client, commands).then(
        (body) => send(body.success ? 200 : 400, body),
        (error: unknown) => {
          server.logger.error({ err: error, client: client.id }, 'gateway request failed');
          send(500, { success: false, data: [], errors: [{ code: ErrorCode.INTERNAL_ERROR, message: 'see the server log' }] });
        },
      );
    });
  });
  return new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen({ host, port }, () => {
      httpServer.off('error', reject);
      resolve(httpServer);
    });
  });
}
