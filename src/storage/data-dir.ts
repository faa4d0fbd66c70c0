import fs from 'node:fs';
import path from 'node:path';

/** Name of the file that records which server process uses a data directory. */
const OWNER_FILE = 'server.pid';

/** Thrown when the data directory cannot be used. */
export class DataDirError extends Error {}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the claim file, unless another server took it over meanwhile. */
function giveUp(file: string): void {
  try {
    if (Number.parseInt(fs.readFileSync(file, 'utf8'), 10) !== process.pid) return;
    fs.rmSync(file, { force: true });
  } catch {
    // Already gone.
  }
}

// TODO: process ids are per PID namespace, so two containers that share a data_dir volume
// do not see each other's claim. A lock held on an open file (flock) would work across them.
/**
 * Makes this process the only server on `dir`, creating it if missing. Two servers on one
 * directory would number their jobs alike and overwrite each other's. A file left by a
 * process that no longer runs is taken over. Returns the function that gives the
 * directory up.
 */
export function claimDataDir(dir: string): () => void {
  const file = path.join(dir, OWNER_FILE);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new DataDirError(`cannot create data_dir ${dir}: ${(error as Error).message}; choose a directory this user can write`);
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => giveUp(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DataDirError(`cannot write ${file}: ${(error as Error).message}; choose a data_dir this user can write`);
      }
    }
    const owner = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    if (Number.isInteger(owner) && owner !== process.pid && isRunning(owner)) {
      throw new DataDirError(`data_dir ${dir} is in use by the server with process id ${owner}; stop it, or give this server another data_dir (if that process is not a server, delete ${file})`);
    }
    fs.rmSync(file, { force: true });
  }
  throw new DataDirError(`cannot claim data_dir ${dir}: another server started on it at the same time; start one server at a time`);
}
