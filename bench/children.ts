import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { ChildMessage, LoadResult, LoadSpec, ParentMessage } from './messages';

const LOADGEN = path.join(__dirname, 'loadgen.js');
/** Time a load generator may take to open its connections. */
const READY_TIMEOUT_MS = 30_000;
/** Extra time, past the spec's own timeout, before the harness kills a load generator. */
const RESULT_GRACE_MS = 15_000;

/** Load generator processes not yet exited. */
const running = new Set<ChildProcess>();

/** Kills every load generator process still running, for an interrupted run. */
export function killLoadProcesses(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** The harness side of one load generator process. */
export class LoadProcess {
  private readonly messages: ChildMessage[] = [];
  private waiter: (() => void) | null = null;
  private exitCode: number | null | undefined = undefined;
  private readonly stderr: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly spec: LoadSpec,
  ) {
    child.on('message', (message: ChildMessage) => {
      this.messages.push(message);
      this.wake();
    });
    child.on('exit', (code) => {
      this.exitCode = code;
      this.wake();
    });
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      if (this.stderr.length < 50) this.stderr.push(text);
    });
  }

  /**
   * Forks a load generator, adds it to `started` at once (so the caller can kill it even if
   * this call fails), sends it the spec and waits until its connections are open.
   */
  static async start(spec: LoadSpec, started: LoadProcess[]): Promise<LoadProcess> {
    // No inherited --cpu-prof or --inspect: the load generator is not what is measured.
    const child = fork(LOADGEN, [], { execArgv: [], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const load = new LoadProcess(child, spec);
    started.push(load);
    load.post({ type: 'spec', spec });
    try {
      await load.receive('ready', READY_TIMEOUT_MS);
    } catch (error) {
      load.kill();
      throw error;
    }
    return load;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  post(message: ParentMessage): void {
    if (this.child.connected) this.child.send(message);
  }

  /** Waits for the result, killing the process if it takes longer than its own timeout allows. */
  async result(): Promise<LoadResult> {
    const message = await this.receive('result', this.spec.timeoutMs + RESULT_GRACE_MS);
    return (message as Extract<ChildMessage, { type: 'result' }>).result;
  }

  kill(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  private async receive(type: 'ready' | 'result', timeoutMs: number): Promise<ChildMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex((message) => message.type === type || message.type === 'error');
      if (index !== -1) {
        const message = this.messages.splice(index, 1)[0];
        if (message.type === 'error') throw new Error(`${this.spec.role} load generator failed: ${message.message}`);
        return message;
      }
      if (this.exitCode !== undefined) {
        throw new Error(`${this.spec.role} load generator exited with code ${this.exitCode} before "${type}"; stderr: ${this.stderr.join('').slice(0, 2000)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.kill();
        throw new Error(`${this.spec.role} load generator sent no "${type}" within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
