/**
 * The gateway's Prometheus /metrics from the tests' side: a parser of the text exposition format
 * (the subset prom-client writes), the value of one series, and a scrape of a running node.
 */
import { httpGet } from './http';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition format (the subset prom-client writes); throws on a line it cannot read. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l: RegExpExecArray | null;
      while ((l = re.exec(m[2])) !== null) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of the series of `name` whose labels include those given (others ignored); 0 when none. */
export function metricValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

export interface Scrape {
  text: string;
  samples: Sample[];
  contentType: string;
}

/** GET <httpUrl>/metrics of a running node, parsed; throws unless it answers 200. */
export async function scrape(node: { httpUrl: string }): Promise<Scrape> {
  const res = await httpGet(`${node.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return { text: res.body, samples: parseMetrics(res.body), contentType: String(res.headers['content-type']) };
}
