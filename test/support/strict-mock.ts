/**
 * Strict test doubles, in the style of immich's `newXRepositoryMock` / `automock`: an object whose
 * every property the test did not provide throws `unstubbed call: <name>.<property>` as soon as the
 * code under test touches it. A collaborator used in a way the test did not foresee fails the test
 * loudly instead of returning `undefined` and letting a wrong path pass.
 *
 *   const bus = strictMock<ClusterBus>({ nodeId: 'node-a', publish: jest.fn() }, 'bus');
 *
 * Stubs are returned as given (pass `jest.fn()` to record calls). A few keys that runtimes and
 * jest probe on any value (`then` when a mock passes through a promise, `asymmetricMatch`,
 * `toJSON`, `$$typeof`, `nodeType`, `constructor`, symbols...) read as `undefined` so that
 * awaiting, printing or comparing a mock does not throw.
 */
const INTROSPECTION_KEYS = new Set<string>([
  'then',
  'asymmetricMatch',
  'toJSON',
  '$$typeof',
  'nodeType',
  'tagName',
  'constructor',
  '@@__IMMUTABLE_ITERABLE__@@',
  '@@__IMMUTABLE_RECORD__@@',
  '_isMockFunction',
  'inspect',
]);

export class UnstubbedCallError extends Error {
  constructor(name: string, property: string) {
    super(`unstubbed call: ${name}.${property}`);
    this.name = 'UnstubbedCallError';
  }
}

export function strictMock<T extends object>(stubs: Partial<T> = {}, name = 'mock'): T {
  return new Proxy(stubs as T, {
    get(target, property, receiver) {
      if (Reflect.has(target, property)) return Reflect.get(target, property, receiver);
      if (typeof property === 'symbol' || INTROSPECTION_KEYS.has(property)) return undefined;
      throw new UnstubbedCallError(name, property);
    },
    has(target, property) {
      return Reflect.has(target, property);
    },
  });
}

/**
 * Mocks that log their calls in one shared log, to check the order of calls across collaborators:
 *
 *   const logged = callLogger(() => log);
 *   claim = logged<PresenceRegistry['claim']>('claim', async () => true);
 *
 * Each is a jest.fn typed like method F that appends `name` to the log (read when it is called),
 * then runs `impl`.
 */
export function callLogger(log: () => string[]) {
  return <F extends (...args: never[]) => unknown>(name: string, impl: (...args: Parameters<F>) => ReturnType<F>): jest.Mock<ReturnType<F>, Parameters<F>> =>
    jest.fn((...args: Parameters<F>) => {
      log().push(name);
      return impl(...args);
    });
}
