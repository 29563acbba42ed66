/**
 * Memo maps of the hot path (parsed authorities, egress verdicts and destinations, DNS answers)
 * bounded the same way: a full map starts afresh, so memory stays bounded whatever the traffic,
 * and the memo simply fills again with what is asked for now.
 */

/** Sets `key`, starting the map afresh when it holds `max` entries. */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max) map.clear();
  map.set(key, value);
}

/**
 * The map kept under `key` in `maps`, made empty on first use. A Map of maps is bounded like the
 * others (at `max`); a WeakMap lets go of its key (a policy) by itself.
 */
export function innerMap<K, K2, V>(maps: { get(key: K): Map<K2, V> | undefined; set(key: K, value: Map<K2, V>): unknown }, key: K, max: number): Map<K2, V> {
  let map = maps.get(key);
  if (map === undefined) {
    map = new Map();
    if (maps instanceof Map && maps.size >= max) maps.clear();
    maps.set(key, map);
  }
  return map;
}
