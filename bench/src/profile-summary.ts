/** Summaries of a V8 .cpuprofile (self and inclusive time by function and by package) and of --trace-gc output. */
import { readFileSync } from 'node:fs';
import { fmt } from './report';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: our gateway's file, an npm package, node's internals, or V8. */
function category(frame: CallFrame): string {
  const url = frame.url;
  if (!url) {
    if (frame.functionName === '(garbage collector)') return 'V8 garbage collector';
    if (frame.functionName === '(idle)') return 'idle';
    if (frame.functionName === '(program)') return 'V8/native (program)';
    return 'native';
  }
  const gw = url.indexOf('/chat-bench/gateway/');
  // Lines are those of the compiled file (the build keeps the layout of src/).
  if (gw >= 0) return `gateway build ${url.slice(gw + '/chat-bench/gateway/'.length)}`;
  const bench = url.indexOf('/chat-bench/out/');
  if (bench >= 0) return `bench ${url.slice(bench + '/chat-bench/out/'.length)}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return `npm ${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  if (url.startsWith('node:')) return `node ${url.slice(5).split('/')[0]}`;
  return url;
}

function frameName(frame: CallFrame): string {
  const cat = category(frame);
  const fn = frame.functionName || '(anonymous)';
  return frame.url ? `${fn} — ${cat}:${frame.lineNumber + 1}` : fn;
}

export function summarizeProfile(file: string, top = 30): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const selfCat = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    total += dt;
    if (node.callFrame.functionName === '(idle)') idle += dt;
    const name = frameName(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + dt);
    const cat = category(node.callFrame);
    const bucket = cat.startsWith('gateway ') ? 'gateway (all of src/)' : cat;
    selfCat.set(bucket, (selfCat.get(bucket) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n || n.callFrame.functionName === '(root)') continue;
      const nm = frameName(n.callFrame);
      if (seen.has(nm)) continue;
      seen.add(nm);
      inclusive.set(nm, (inclusive.get(nm) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const pct = (ms: number) => `${((ms / busy) * 100).toFixed(1)}%`;
  const out: string[] = [];
  out.push(`${fmt(total)} ms sampled, ${fmt(busy)} ms busy (not idle). Percentages are of busy time.`);
  out.push('');
  out.push('Self time by where the code lives:');
  out.push('');
  out.push('| where | self ms | % |');
  out.push('|---|---|---|');
  for (const [cat, ms] of [...selfCat].filter(([c]) => c !== 'idle').sort((a, b) => b[1] - a[1]).slice(0, 15)) out.push(`| ${cat} | ${fmt(ms)} | ${pct(ms)} |`);
  out.push('');
  out.push(`Top ${top} functions by self time:`);
  out.push('');
  out.push('| function — file:line | self ms | % |');
  out.push('|---|---|---|');
  for (const [name, ms] of [...self].filter(([n]) => n !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`| ${name.replace(/\|/g, '\\|')} | ${fmt(ms)} | ${pct(ms)} |`);
  out.push('');
  out.push(`Top ${top} functions by inclusive time (self + callees):`);
  out.push('');
  out.push('| function — file:line | inclusive ms | % |');
  out.push('|---|---|---|');
  for (const [name, ms] of [...inclusive].filter(([n]) => n !== '(idle)' && n !== '(program)').sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`| ${name.replace(/\|/g, '\\|')} | ${fmt(ms)} | ${pct(ms)} |`);
  return out.join('\n');
}

/** GC pauses from --trace-gc lines, per phase between the hook's BENCH-MARK start/end lines. */
export function summarizeTraceGc(file: string): string | undefined {
  const text = readFileSync(file, 'utf8');
  if (!text.includes(' ms: ')) return undefined;
  const out: string[] = ['| phase | kind | count | pause ms total | max pause ms | incremental marking ms |', '|---|---|---|---|---|---|'];
  let phase: string | undefined;
  type Acc = { count: number; total: number; max: number; incremental: number };
  let acc = new Map<string, Acc>();
  const flush = () => {
    if (!phase) return;
    for (const [kind, a] of acc) out.push(`| ${phase} | ${kind} | ${a.count} | ${fmt(a.total)} | ${fmt(a.max)} | ${fmt(a.incremental)} |`);
  };
  for (const line of text.split('\n')) {
    const mark = /^BENCH-MARK \d+ (start|end) (.*)$/.exec(line);
    if (mark) {
      if (mark[1] === 'start') {
        phase = mark[2];
        acc = new Map();
      } else {
        flush();
        phase = undefined;
      }
      continue;
    }
    if (!phase) continue;
    const gc = /ms: (Scavenge|Minor Mark-Compact|Mark-Compact(?: \(reduce\))?|Mark-sweep)\b.*?MB, ([\d.]+) \/ ([\d.]+) ms(?:\s+\(\+ ([\d.]+) ms in)?/.exec(line);
    if (!gc) continue;
    const a = acc.get(gc[1]) ?? { count: 0, total: 0, max: 0, incremental: 0 };
    const pause = Number(gc[2]);
    a.count++;
    a.total += pause;
    a.max = Math.max(a.max, pause);
    a.incremental += Number(gc[4] ?? 0);
    acc.set(gc[1], a);
  }
  return out.length > 2 ? out.join('\n') : undefined;
}
