import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, ROOT, tempDir } from './server';

const RUN_TIMEOUT_MS = 15000;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Text written to stdin, which is then closed. Without it, stdin is /dev/null. */
  input?: string;
  /** Variables set for the child on top of the test process's environment. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Working directory; the repository root by default. */
  cwd?: string;
}

/** Runs a Node script to completion and kills it after a timeout. */
export function runScript(script: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? RUN_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(script)} ${args.join(' ')} still running after ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Runs the compiled CLI to completion, as `runScript` does, in a temporary working
 * directory, so a relative data_dir stays out of the repository.
 */
export function runCli(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runScript(CLI, args, { cwd: tempDir(), ...options });
}

/** Reads the CPU time (user plus system, all threads) a process has used, in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is in parentheses and may contain spaces, so the split starts after it,
  // at field 3 (state). utime (field 14) and stime (field 15) are then at indexes 11 and 12.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
