import fs from 'node:fs';
import path from 'node:path';

/** Bytes that the files of a directory tree take. */
export interface DirectorySize {
  /** Sum of the file sizes (st_size), as `ls -l` shows them. */
  apparentBytes: number;
  /** Sum of the blocks allocated to the files (st_blocks x 512), as `du` counts them; less than apparent for sparse files. */
  allocatedBytes: number;
}

/** Adds up the sizes of every file under `dir`, following no symbolic links. */
export function directorySize(dir: string): DirectorySize {
  const size: DirectorySize = { apparentBytes: 0, allocatedBytes: 0 };
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop() as string;
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const file = path.join(current, entry.name);
      if (entry.isDirectory()) {
        pending.push(file);
        continue;
      }
      const stat = fs.lstatSync(file);
      size.apparentBytes += stat.size;
      size.allocatedBytes += stat.blocks * 512;
    }
  }
  return size;
}
