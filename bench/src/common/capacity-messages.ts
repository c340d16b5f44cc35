/**
 * The capacity mode's commands to a load generator (bench/src/loadgen/capacity.ts) and its
 * answers. Several load generators share one server: each holds its own clients (those whose
 * index it was given) from its own source address, and every time is read from the monotonic
 * clock (`process.hrtime`), which all processes of the machine share.
 */

export type CapacityCommand =
  /**
   * Logs the given users in, in waves of `wave` handshakes started together (each wave waits for
   * its last AUTH_MESSAGE), or with `wave` handshakes in flight at any time when `continuous`.
   */
  | { cmd: 'cap-open'; indices: number[]; wave: number; continuous: boolean; timeoutMs: number }
  /** Waits until every client of this process knows exactly `target` users online. */
  | { cmd: 'cap-settle'; target: number; timeoutMs: number }
  /**
   * Login cost at N: logs the given (extra) users in one after another, each once the previous one
   * got its AUTH SUCCESS; `cap-probe-close` logs them out again, one after another.
   */
  | { cmd: 'cap-probe'; indices: number[]; timeoutMs: number }
  | { cmd: 'cap-probe-close'; timeoutMs: number }
  /** CHAT broadcast: every process starts counting the receipts of message `m<k>`... */
  | { cmd: 'cap-chat-arm'; k: number }
  /** ...one process sends it from its first client... */
  | { cmd: 'cap-chat-send'; k: number }
  /** ...and every process waits until each of its clients got it once. */
  | { cmd: 'cap-chat-wait'; k: number; timeoutMs: number };

export interface CapOpenResult {
  connected: number;
  /** Monotonic ms of the first handshake started and of the last AUTH SUCCESS. */
  startAt: number;
  lastAuthAt: number;
  failures: string[];
}

export interface CapSettleResult {
  /** Users missing (or extra) across the clients: 0 when settled. */
  short: number;
  clients: number;
  failures: string[];
}

export interface CapProbeResult {
  logins: number;
  /** Size of each AUTH SUCCESS frame received (payload bytes). */
  authBytes: number[];
  /** Each login's time from the start of its handshake to its AUTH SUCCESS (ms). */
  loginMs: number[];
  failures: string[];
}

export interface CapChatResult {
  /** Clients of this process that got the message, and how many should have. */
  received: number;
  expected: number;
  /** Monotonic ms of the first and of the last receipt in this process (NaN when none). */
  firstAt: number;
  lastAt: number;
  failures: string[];
}

/** Monotonic milliseconds, comparable between the processes of one machine. */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
