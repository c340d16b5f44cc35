import { callLogger, strictMock, UnstubbedCallError } from './strict-mock';

interface Repo {
  find(id: string): Promise<string | undefined>;
  save(id: string, value: string): Promise<void>;
  readonly name: string;
}

describe('strictMock', () => {
  it('returns the stubs that were provided', async () => {
    const find = jest.fn(async (id: string) => `v-${id}`);
    const repo = strictMock<Repo>({ find, name: 'r' }, 'repo');
    await expect(repo.find('1')).resolves.toBe('v-1');
    expect(repo.name).toBe('r');
    expect(find).toHaveBeenCalledWith('1');
  });

  it('throws "unstubbed call: <name>.<property>" for anything else', () => {
    const repo = strictMock<Repo>({}, 'repo');
    expect(() => repo.save('1', 'x')).toThrow(UnstubbedCallError);
    expect(() => repo.save('1', 'x')).toThrow('unstubbed call: repo.save');
  });

  it('can be awaited and compared without throwing', async () => {
    const repo = strictMock<Repo>({}, 'repo');
    await expect(Promise.resolve(repo)).resolves.toBe(repo);
    expect([repo]).toContain(repo);
  });
});

describe('callLogger', () => {
  it('makes jest.fns that log their name in one shared log, then run their implementation', async () => {
    let log: string[] = [];
    const logged = callLogger(() => log);
    const find = logged<Repo['find']>('repo.find', async (id) => `v-${id}`);
    const save = logged<Repo['save']>('repo.save', async () => undefined);
    await save('1', 'x');
    await expect(find('1')).resolves.toBe('v-1');
    expect(log).toEqual(['repo.save', 'repo.find']);
    expect(find).toHaveBeenCalledWith('1');
    log = []; // read when called: a new log takes the next calls
    await find('2');
    expect(log).toEqual(['repo.find']);
  });
});
