import { GroupConfig } from '../config/types';

/**
 * FNV-1a over the slug's UTF-16 code units. Stable across versions and processes, so a
 * group stays on the same shard for a given shard count.
 */
function hashSlug(slug: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < slug.length; index++) {
    hash ^= slug.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Returns the shard that owns a group: its pinned `shard`, else a hash of its slug. */
export function placeGroup(group: GroupConfig, shardCount: number): number {
  if (group.shard !== undefined) return group.shard;
  return hashSlug(group.slug) % shardCount;
}
