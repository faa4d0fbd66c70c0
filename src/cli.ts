import { parseArgs } from 'node:util';
import { hashPassword } from './auth/passwords';
import { loadConfig } from './config/load';
import { ConfigError } from './config/validate';
import { createLogger } from './log';
import { JobatatorServer } from './server';
import { nativeCodecLoaded } from './shards/codec';

const USAGE = `Usage:
  jobatator [--config FILE] [--host ADDRESS] [--port PORT] [--web-port PORT]
  jobatator hash-password        reads a password on stdin, prints a password_hash value

Options:
  --config FILE    YAML config; default ./config.yml, else the bundled config.example.yml
  --host ADDRESS   address for TCP and HTTP, overrides the config's host
  --port PORT      TCP port, overrides the config's port (0 picks a free port)
  --web-port PORT  HTTP gateway port, overrides the config's web_port (0 picks a free port,
                   -1 disables the gateway)
  --help           show this text
`;

/** Environment variables that turn a boolean setting on, as in the original server. */
function envFlag(name: string): boolean {
  const value = process.env[name];
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Runs the command line; resolves with the process exit code. */
/**
 * Joins `--port -1` style pairs into `--port=-1`: parseArgs reads a value that starts
 * with a dash as an option of its own.
 */
function joinNegativeValues(argv: string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    const next = argv[index + 1];
    if ((arg === '--port' || arg === '--web-port') && next !== undefined && /^-\d+$/.test(next)) {
      joined.push(`${arg}=${next}`);
      index++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv),
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'web-port': { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals[0] === 'hash-password') {
    const password = await readStdin();
    if (password === '') {
      process.stderr.write('hash-password: no password on stdin; pipe one in, for example: echo -n secret | jobatator hash-password\n');
      return 2;
    }
    process.stdout.write(`${await hashPassword(password)}\n`);
    return 0;
  }
  if (positionals.length > 0) {
    process.stderr.write(`unknown argument "${positionals[0]}"\n\n${USAGE}`);
    return 2;
  }

  let loaded;
  try {
    loaded = loadConfig(values.config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`jobatator: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const config = loaded.config;
  if (values.host !== undefined) config.host = values.host;
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!/^\d{1,5}$/.test(values.port) || port > 65535) {
      process.stderr.write(`jobatator: --port must be an integer from 0 to 65535, got "${values.port}"\n`);
      return 2;
    }
    config.port = port;
  }
  const webPort = values['web-port'];
  if (webPort !== undefined) {
    const parsedWebPort = Number(webPort);
    if (!/^(-1|\d{1,5})$/.test(webPort) || parsedWebPort > 65535) {
      process.stderr.write(`jobatator: --web-port must be an integer from 0 to 65535, or -1 to disable the gateway, got "${webPort}"\n`);
      return 2;
    }
    config.web_port = parsedWebPort;
  }
  if (envFlag('TEST_MODE')) config.test_mode = true;
  if (envFlag('ALLOW_DISPATCH')) config.allow_dispatch = true;

  const logger = createLogger(config.log_level);
  logger.info({ file: loaded.file }, 'config loaded');
  if (loaded.usesExample) {
    logger.warn({ file: loaded.file }, 'no --config and no ./config.yml: serving with the example config and its demo credentials; do not expose this server');
  }
  for (const warning of loaded.warnings) logger.warn(warning);
  logger.info({ native: nativeCodecLoaded() }, nativeCodecLoaded() ? 'msgpackr native extension loaded' : 'msgpackr native extension not loaded; using the JavaScript decoder');
  if (config.test_mode) logger.warn('test mode is on: DEBUG commands, STOP_SERVER and ADVANCE_CLOCK are enabled');

  const server = new JobatatorServer(config, logger);
  const stopped = server.stopped();
  // Handlers go in before start-up, because a signal that arrives between the "listening"
  // log line and the end of start() must still stop the server gracefully.
  let started = false;
  let pendingSignal: string | undefined;
  const onSignal = (signal: string): void => {
    if (started) void server.stop(signal);
    else pendingSignal = signal;
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await server.start();
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    await server.stop('start-up failed').catch(() => undefined);
    return 1;
  }
  started = true;
  if (pendingSignal !== undefined) void server.stop(pendingSignal);
  await stopped;
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
