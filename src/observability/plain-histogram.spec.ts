import { Histogram, Registry } from 'prom-client';
import { PlainHistogram } from './plain-histogram';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

describe('PlainHistogram', () => {
  it('exports what prom-client\'s Histogram exports for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const plain = new PlainHistogram('h_seconds', 'help text', BUCKETS, ours);
    const reference = new Histogram({ name: 'h_seconds', help: 'help text', buckets: BUCKETS, registers: [theirs] });
    // every bucket bound exactly, between bounds, above the last, zero
    const samples = [0, 0.0001, ...BUCKETS, ...BUCKETS.map((b) => b * 1.5), 7, 100, 0.003, 0.003];
    for (const v of samples) {
      plain.observe(v);
      reference.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('exports zeros before any observation and after reset', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const plain = new PlainHistogram('h', 'h', [1, 2], ours);
    new Histogram({ name: 'h', help: 'h', buckets: [1, 2], registers: [theirs] });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    plain.observe(1.5);
    expect(await ours.metrics()).toContain('h_count 1');
    plain.reset();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('refuses buckets that do not increase', () => {
    expect(() => new PlainHistogram('h', 'h', [1, 1], new Registry())).toThrow(/increase/);
  });
});
