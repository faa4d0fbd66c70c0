/**
 * Reads CPU time and resident memory of broker processes from Linux's /proc. The utime and
 * stime fields of /proc/PID/stat count every thread of the process, including threads that
 * already exited, so a thread pool's work is counted in full.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond: number | undefined;

/** Returns the kernel's clock ticks per second (CLK_TCK), the unit of utime and stime. */
function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // Linux has used 100 on every common architecture for decades.
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface StatFields {
  pid: number;
  ppid: number;
  /** utime + stime in clock ticks. */
  cpuTicks: number;
}

/** Parses /proc/PID/stat. The command name in brackets may contain spaces, so fields count from the last ')'. */
function readStat(path: string): StatFields | null {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is the state (field 3 of the file), so field N of the file is fields[N - 3].
  return {
    pid: Number(text.slice(0, text.indexOf(' '))),
    ppid: Number(fields[1]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
  };
}

/** Returns the given pids and every live descendant of them. */
export function withDescendants(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(`/proc/${entry}/stat`);
    if (stat === null) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(stat.pid);
    children.set(stat.ppid, siblings);
  }
  const found = new Set<number>();
  const pending = [...roots];
  while (pending.length > 0) {
    const pid = pending.pop() as number;
    if (found.has(pid)) continue;
    found.add(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return [...found];
}

/** Returns the CPU time (user + system, all threads) of the processes, in microseconds. */
export function cpuMicros(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(`/proc/${pid}/stat`)?.cpuTicks ?? 0;
  return (ticks * 1e6) / clockTicksPerSecond();
}

/** Returns CPU time per thread name of one process, in microseconds, for live threads only. */
export function cpuMicrosByThread(pid: number): Array<{ tid: number; name: string; micros: number }> {
  const threads: Array<{ tid: number; name: string; micros: number }> = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of entries) {
    const stat = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (stat === null) continue;
    let name = '';
    try {
      name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      // The thread exited between the two reads.
    }
    threads.push({ tid: Number(tid), name, micros: (stat.cpuTicks * 1e6) / clockTicksPerSecond() });
  }
  return threads;
}

/** Returns the summed resident set size (VmRSS) of the processes, in bytes. */
export function rssBytes(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(text);
    if (match !== null) total += Number(match[1]) * 1024;
  }
  return total;
}

/**
 * Returns the busy CPU time of the whole machine since boot, in microseconds: the user, nice,
 * system, irq, softirq and steal columns of the first line of /proc/stat.
 */
export function machineBusyMicros(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + irq + softirq + (steal || 0)) * 1e6) / clockTicksPerSecond();
}
