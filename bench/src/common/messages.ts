/** What the orchestrator and the load generator say to each other over the IPC channel. */
import type { CapacityCommand } from './capacity-messages';

export type ClientKind = 'ws' | 'sio';

export interface LoadgenInit {
  kind: ClientKind;
  /** One URL per node: client i connects to urls[i % urls.length]. */
  urls: string[];
  /** Tokens by user index. */
  tokens: string[];
  /** Largest number of users whose presence a client tracks (bitset size). */
  maxUsers: number;
  /** Source address of this process's clients (capacity mode: 127.0.0.2, 127.0.0.3, ...). */
  localAddress?: string;
}

export type LoadgenCommand =
  | { cmd: 'init'; init: LoadgenInit }
  /** Connects users [from, to) with at most `concurrency` handshakes in flight; resolves when every
   *  connected client (old and new) knows exactly the users online. */
  | { cmd: 'connect'; from: number; to: number; concurrency: number; timeoutMs: number }
  /** CHAT broadcast: `messages` messages, `window` in flight, each one complete when all online clients got it. */
  | { cmd: 'broadcast'; messages: number; window: number; timeoutMs: number }
  /** Open-loop dialogs between random pairs of the online clients. */
  | {
      cmd: 'dialog';
      rate: number;
      durationMs: number;
      warmupMs: number;
      drainMs: number;
      seed: number;
      samples?: boolean;
      /** Every dialog crosses nodes: the receiver is connected to another node than the sender (random among those). */
      crossNode?: boolean;
    }
  /** Presence churn: `storms` times, `size` extra users [from, from+size) connect then disconnect. */
  | { cmd: 'churn'; from: number; size: number; storms: number; concurrency: number; timeoutMs: number }
  /** Idle: nothing sent for durationMs; checks nothing arrives. */
  | { cmd: 'idle'; durationMs: number }
  /** Closes every client (after the server was killed) and exits. */
  | { cmd: 'exit' }
  /** The capacity mode's commands (loadgen/capacity.ts). */
  | CapacityCommand;

export interface ConnectResult {
  connected: number;
  elapsedMs: number;
  /** Connections per second of this step. */
  rate: number;
  /** Presence frames received by all clients during the step. */
  presenceFrames: number;
  /** CONNECTs for users a client already knew (allowed by the protocol, reported). */
  duplicates: number;
  failures: string[];
}

export interface BroadcastResult {
  online: number;
  messages: number;
  delivered: number;
  expected: number;
  elapsedMs: number;
  deliveredPerSec: number;
  fanoutP50Ms: number;
  fanoutP99Ms: number;
  fanoutMaxMs: number;
  lost: number;
  failures: string[];
}

export interface DialogResult {
  online: number;
  rate: number;
  /** Dialogs whose receiver was on another node than the sender (every one with crossNode). */
  crossNode: number;
  sent: number;
  /** Achieved send rate over the sending window. */
  sentPerSec: number;
  success: number;
  /** DELIVERY ERROR: reported as not delivered. */
  deliveryErrors: number;
  /** Neither delivered nor reported, or SUCCESS without the receiver getting it. */
  lost: number;
  /** Round trips measured (after warm-up). */
  measured: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The measured round trips (ms, sorted), when the command asked for `samples`. */
  rttMs?: number[];
  failures: string[];
}

export interface ChurnResult {
  online: number;
  storms: number;
  size: number;
  elapsedMs: number;
  /** Joins + leaves per second. */
  eventsPerSec: number;
  /** Presence frames the online (stable) clients received. */
  presenceFrames: number;
  lost: number;
  failures: string[];
}

export interface IdleResult {
  unexpectedFrames: number;
  closed: number;
}

export type LoadgenReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** What the orchestrator says to an attacker process (bench/src/attacker.ts). */
export interface AttackerSpec {
  url: string;
  mode: 'preauth' | 'joined';
  /** The token of a user of its own (joined). */
  token?: string;
  /** The gateway's limits the frames are made to: at them, or just under them. */
  limits: { preAuthFrameBytes: number; messageFrameBytes: number; maxFrameBytes: number };
}

export type AttackerCommand = { cmd: 'start'; spec: AttackerSpec } | { cmd: 'stop' } | { cmd: 'exit' };

/** What an attacker did between its start and its stop. */
export interface AttackerStats {
  frames: number;
  /** Bytes of frames handed to its socket (sent, or buffered when it stopped). */
  bytes: number;
  connections: number;
  /** AUTH SUCCESS received (joined). */
  logins: number;
  /** Frames the server sent it. */
  answers: number;
  /** Close codes (and refused upgrades, "http <status>") by count. */
  closes: Record<string, number>;
}
