/** Presence bookkeeping: every client keeps a bitset of the users it knows to be online. */
import { counters, session, type Client } from './state';

export function know(c: Client, user: number): void {
  if (user < 0 || user >= session.init.maxUsers) return void counters.anomalies++;
  const byte = user >> 3;
  const bit = 1 << (user & 7);
  if (c.known[byte] & bit) {
    counters.duplicates++;
    return;
  }
  c.known[byte] |= bit;
  c.knownCount++;
}

export function forget(c: Client, user: number): void {
  if (user < 0 || user >= session.init.maxUsers) return void counters.anomalies++;
  const byte = user >> 3;
  const bit = 1 << (user & 7);
  if (!(c.known[byte] & bit)) {
    counters.anomalies++;
    return;
  }
  c.known[byte] &= ~bit;
  c.knownCount--;
}

export function userIndex(id: unknown): number {
  return typeof id === 'string' && id.startsWith('u') ? Number(id.slice(1)) : -1;
}

export function sumPresence(group: readonly Client[]): number {
  let n = 0;
  for (const c of group) n += c.presenceFrames;
  return n;
}
