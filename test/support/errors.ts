/**
 * The error a call fails with, as a value to assert on: the test fails when the call throws
 * something else (rethrown as is) or nothing at all.
 *
 *   expect(thrownBy(FrameError, () => service.chat(client, frame)).code).toBe(FrameErrorCode.INVALID_MESSAGE);
 *   expect((await rejectionOf(AvatarError, service.saveAvatar(client, frame))).code).toBe(...);
 */
type ErrorClass<E> = abstract new (...args: never[]) => E;

/** The `type` error that `fn` throws. */
export function thrownBy<E extends Error>(type: ErrorClass<E>, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    if (err instanceof type) return err;
    throw err;
  }
  throw new Error(`expected a ${type.name} to be thrown; nothing was`);
}

/** The `type` error that `run` (a promise, or a function that throws or returns one) rejects with. */
export async function rejectionOf<E extends Error>(type: ErrorClass<E>, run: Promise<unknown> | (() => unknown)): Promise<E> {
  try {
    await (typeof run === 'function' ? run() : run);
  } catch (err) {
    if (err instanceof type) return err;
    throw err;
  }
  throw new Error(`expected a ${type.name} to be thrown; nothing was`);
}
