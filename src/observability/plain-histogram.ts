import type { Registry } from 'prom-client';

interface HistogramValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
  exemplar?: null;
}

/**
 * A label-less Prometheus histogram for the hot path: `observe` is a loop over the bucket bounds
 * and three additions (prom-client's Histogram allocates a closure and hashes a label set per
 * observation). It exports exactly what prom-client's Histogram exports for the same
 * observations (plain-histogram.spec.ts compares the two).
 */
export class PlainHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1])) throw new Error(`${name}: buckets must increase`);
    this.counts = new Float64Array(buckets.length);
    registry.registerMetric(this as never);
  }

  observe(value: number): void {
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** The metric as prom-client's registry reads it. */
  get(): { name: string; help: string; type: string; aggregator: string; values: HistogramValue[] } {
    const values: HistogramValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += this.counts[i];
      values.push({ value: cumulative, labels: { le: this.buckets[i] }, metricName: `${this.name}_bucket`, exemplar: null });
    }
    values.push({ value: this.count, labels: { le: '+Inf' }, metricName: `${this.name}_bucket`, exemplar: null });
    values.push({ value: this.sum, labels: {}, metricName: `${this.name}_sum` });
    values.push({ value: this.count, labels: {}, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
