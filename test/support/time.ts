/**
 * Waiting in tests: a pause, a condition polled until it holds, a bound on a promise, a promise
 * the test settles itself, and a turn of the event loop.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How often `eventually` asks again. */
export const POLL_MS = 10;

/**
 * Polls `check` every POLL_MS until it returns (or resolves to) true, and fails after `timeoutMs`
 * with `timed out after <ms> ms waiting for <what>`. A check that throws or rejects counts as
 * "not yet" (a server restarting refuses connections for a while); the last such error is quoted
 * in the failure.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 4000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError === undefined ? '' : ` (last attempt: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(POLL_MS);
  }
}

/**
 * `promise`, or a rejection `timed out after <ms> ms waiting for <what>` if it takes longer (`what`
 * may be a function, read when the time is up).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** A promise the test settles itself. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// Taken before any test can install jest's fake timers.
const realSetImmediate = setImmediate;

/** Lets every pending promise callback run (works under jest fake timers too). */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}
