/** The load generator's shared state: its clients, what it was told at init, its counters and failures. */
import type { WebSocket } from 'ws';
import type { Socket as SioSocket } from 'socket.io-client';
import type { LoadgenInit } from '../common/messages';
import type { LeanWs } from './lean-ws';

export interface Client {
  idx: number;
  ws?: WebSocket;
  sio?: SioSocket;
  /** The capacity mode's minimal client (loadgen/lean-ws.ts). */
  lean?: LeanWs;
  state: 'connecting' | 'open' | 'closed';
  /** Closed by us (churn): not a failure. */
  closing: boolean;
  /** Bitset of the users this client knows to be online. */
  known: Uint8Array;
  knownCount: number;
  presenceFrames: number;
  chatReceived: number;
  authed?: (ok: boolean, why?: string) => void;
  closed?: () => void;
}

/** Set by the init command. */
export const session = {
  init: undefined as unknown as LoadgenInit,
  bitsetBytes: 0,
  shuttingDown: false,
};

export const counters = {
  duplicates: 0,
  anomalies: 0,
  unexpectedFrames: 0,
  unexpectedCloses: 0,
  /** Counts frames of any kind (for the idle check). */
  framesSeen: 0,
};

export const clients = new Map<number, Client>();
/** Stable clients, in connection order: they send and receive the broadcasts and dialogs. */
export const online: Client[] = [];

const failures: string[] = [];

export function fail(why: string): void {
  if (failures.length < 50) failures.push(why);
}

export function takeFailures(): string[] {
  return failures.splice(0, failures.length);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
