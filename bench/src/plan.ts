/** The scenario plan: steps run in order on one server process, connections accumulating. */
import { options, type Options, type RunName } from './cli/options';

export type Step =
  | { kind: 'connect'; to: number; measure: boolean }
  | { kind: 'idle'; ms: number }
  | { kind: 'broadcast'; messages: number; window: number }
  | { kind: 'dialog'; rate: number; ms: number; warmupMs: number }
  | { kind: 'churn'; size: number; storms: number };

export type StepOf<K extends Step['kind']> = Extract<Step, { kind: K }>;

export const BROADCAST_WINDOW = 4;
const msgsFor = (n: number, deliveries: number, min: number, max: number) => Math.max(min, Math.min(max, Math.round(deliveries / n)));

/** The N ≤ 1000 steps, shared by the quick and the full plan (which differ only in these sizes). */
function smallN(o: {
  deliveries100: number;
  deliveries1000: number;
  maxMessages: number;
  idleMs: number;
  dialogMs: number;
  warmupMs: number;
  churnSize: number;
  storms: number;
}): Step[] {
  return [
    { kind: 'connect', to: 100, measure: false },
    { kind: 'broadcast', messages: msgsFor(100, o.deliveries100, 20, o.maxMessages), window: BROADCAST_WINDOW },
    { kind: 'connect', to: 1000, measure: true },
    { kind: 'idle', ms: o.idleMs },
    { kind: 'broadcast', messages: msgsFor(1000, o.deliveries1000, 20, o.maxMessages), window: BROADCAST_WINDOW },
    { kind: 'dialog', rate: 1000, ms: o.dialogMs, warmupMs: o.warmupMs },
    { kind: 'dialog', rate: 5000, ms: o.dialogMs, warmupMs: o.warmupMs },
    { kind: 'churn', size: o.churnSize, storms: o.storms },
  ];
}

export function plan(o: Options): Step[] {
  if (o.quick) {
    return smallN({ deliveries100: 60_000, deliveries1000: 100_000, maxMessages: 1000, idleMs: 1000, dialogMs: 3000, warmupMs: 500, churnSize: 50, storms: 2 });
  }
  if (o.profile) {
    return [
      { kind: 'connect', to: 1000, measure: true },
      { kind: 'broadcast', messages: 1000, window: BROADCAST_WINDOW },
      { kind: 'dialog', rate: 5000, ms: 8000, warmupMs: 1000 },
    ];
  }
  return [
    ...smallN({ deliveries100: 300_000, deliveries1000: 1_000_000, maxMessages: 3000, idleMs: 2000, dialogMs: 10_000, warmupMs: 1000, churnSize: 100, storms: 5 }),
    { kind: 'connect', to: 5000, measure: false },
    { kind: 'broadcast', messages: msgsFor(5000, 1_500_000, 20, 3000), window: BROADCAST_WINDOW },
    { kind: 'connect', to: 10_000, measure: true },
    { kind: 'idle', ms: 2000 },
    { kind: 'broadcast', messages: msgsFor(10_000, 1_500_000, 20, 3000), window: BROADCAST_WINDOW },
    { kind: 'dialog', rate: 1000, ms: 10_000, warmupMs: 1000 },
    { kind: 'dialog', rate: 5000, ms: 10_000, warmupMs: 1000 },
  ];
}

export function clusterPlan(o: Options): Step[] {
  const n = o.quick ? 500 : 2000;
  return [
    { kind: 'connect', to: n, measure: true },
    { kind: 'broadcast', messages: msgsFor(n, o.quick ? 100_000 : 1_000_000, 20, 2000), window: BROADCAST_WINDOW },
    { kind: 'dialog', rate: 1000, ms: o.quick ? 2000 : 10_000, warmupMs: 500 },
    ...(o.quick ? [] : [{ kind: 'dialog', rate: 5000, ms: 10_000, warmupMs: 1000 } as Step]),
  ];
}

/**
 * --cluster (issue 13): the steps every deployment of the cluster comparison runs (ours on one
 * node, ours on two nodes, Socket.IO on two nodes), the same N and rates for all three: the
 * clients alternate between the nodes, every dialog of a two-node deployment crosses nodes.
 */
export const CLUSTER_MODE_N = 1000;

export function clusterModePlan(o: Options): Step[] {
  const n = CLUSTER_MODE_N;
  if (o.profile) {
    // --cluster --profile: node 0 of each deployment profiled through a short broadcast and the 5000/s dialogs.
    return [
      { kind: 'connect', to: n, measure: true },
      { kind: 'broadcast', messages: msgsFor(n, 200_000, 20, 2000), window: BROADCAST_WINDOW },
      { kind: 'dialog', rate: 5000, ms: 8000, warmupMs: 1000 },
    ];
  }
  const ms = o.quick ? 3000 : 10_000;
  const warmupMs = o.quick ? 500 : 1000;
  return [
    { kind: 'connect', to: n, measure: true },
    { kind: 'broadcast', messages: msgsFor(n, o.quick ? 100_000 : 1_000_000, 20, 2000), window: BROADCAST_WINDOW },
    { kind: 'dialog', rate: 1000, ms, warmupMs },
    { kind: 'dialog', rate: 5000, ms, warmupMs },
  ];
}

/** The deployments of the cluster comparison, in the order of the first repetition (it rotates). */
export function clusterModeRuns(o: Options): RunName[] {
  return ['gateway', 'cluster', ...(o.servers.includes('sio') ? (['sio-cluster'] as const) : [])];
}

/** --max-n K: the plan up to K connections (the steps after a larger connect are dropped). */
export function capped(steps: Step[], maxN: number | undefined): Step[] {
  if (maxN === undefined) return steps;
  const i = steps.findIndex((s) => s.kind === 'connect' && s.to > maxN);
  return i < 0 ? steps : steps.slice(0, i);
}

/**
 * --from-n K: the plan from its first connect to K or more connections (the steps before it are
 * dropped), so that the large-N steps can be repeated without the small-N ones (run those with
 * --quick); that connect is then not measured, as it starts from zero.
 */
export function from(steps: Step[], minN: number | undefined): Step[] {
  if (minN === undefined) return steps;
  const i = steps.findIndex((s) => s.kind === 'connect' && s.to >= minN);
  if (i < 0) throw new Error(`--from-n ${minN}: no step connects that many`);
  return steps.slice(i).map((s, j) => (j === 0 && s.kind === 'connect' ? { ...s, measure: false } : s));
}

/**
 * The hostile-clients scenario (issue 10): legitimate users' dialogs (the dialog scenario's open
 * loop) in windows without and with four attacker processes, alternating, on a gateway that runs
 * with its real limits; see runner/hostile.ts.
 */
export interface HostilePlan {
  /** Legitimate users online: u0 ... u<online-1>. */
  online: number;
  /** Their dialogs per second, between random pairs. */
  rate: number;
  /** Quiet window, then attacked window, this many times. */
  rounds: number;
  /** Measured part of each window. */
  windowMs: number;
  /** Unmeasured dialogs before the first quiet window (a fresh process: JIT), and before the later ones. */
  firstWarmupMs: number;
  warmupMs: number;
  /** Attacked windows: from the attackers' start to the start of the measurement. */
  rampMs: number;
  /** After the attackers stop, before the next quiet window: the gateway reads what they left in its socket buffers within their budget. */
  gapMs: number;
  /** Attackers without a token, and logged-in ones (each one connection at a time, reconnecting when closed). */
  preauth: number;
  joined: number;
  servers: Options['hostileServers'];
}

export function hostilePlan(o: Options): HostilePlan | undefined {
  if (!o.hostile) return undefined;
  return {
    online: Math.min(1000, o.maxN ?? 1000),
    rate: 1000,
    rounds: o.quick ? 2 : 3,
    windowMs: o.quick ? 3000 : 8000,
    firstWarmupMs: 1000,
    warmupMs: 500,
    rampMs: 1000,
    gapMs: 2500,
    preauth: 2,
    joined: 2,
    servers: o.hostileServers,
  };
}

/**
 * The events scenario (issue 12): our gateway with EVENTS_NATS_URL set (core NATS, the default
 * mode), publishing one event per connect and per dialog to a nats-server the bench starts; its
 * dialog CPU per round trip at 5000/s is compared with raw ws's in the same repetition (target
 * ≤ 1.4x). Runs in every repetition, right after the main servers.
 */
export function eventsPlan(o: Options): Step[] {
  if (!o.events) return [];
  const n = Math.min(1000, o.maxN ?? 1000);
  // --profile: the profile plan's dialog phase, profiled like ours without events.
  if (o.profile) return [{ kind: 'connect', to: n, measure: false }, { kind: 'dialog', rate: 5000, ms: 8000, warmupMs: 1000 }];
  // The dialog steps of the main plan, in its order: the 5000/s step comes after as much JIT
  // warm-up as ours without events had (the 1000/s step), or the comparison would favour ours.
  const ms = o.quick ? 3000 : 10_000;
  const warmupMs = o.quick ? 500 : 1000;
  return [
    { kind: 'connect', to: n, measure: false },
    { kind: 'dialog', rate: 1000, ms, warmupMs },
    { kind: 'dialog', rate: 5000, ms, warmupMs },
  ];
}

/** What one invocation runs, and the sizes that follow from it. */
export interface SuitePlan {
  steps: Step[];
  /** The cluster scenario's steps ([] when it does not run); with --cluster, the cluster comparison's. */
  clusterSteps: Step[];
  /** --cluster: the deployments compared (ours on one node, ours and Socket.IO on two); [] otherwise. */
  clusterRuns: RunName[];
  /** The events scenario's steps ([] when it does not run). */
  eventsSteps: Step[];
  /** Most connections any server holds (the churn users come on top). */
  maxN: number;
  churnSize: number;
  /** Users in the users file: u0 ... u<totalUsers-1>. */
  totalUsers: number;
  mode: string;
  hostile?: HostilePlan;
  /** The logged-in attackers' users: u<attackerBase> ... (after the churn users). */
  attackerBase: number;
}

export function suitePlan(o: Options): SuitePlan {
  if (o.clusterMode) {
    const clusterSteps = capped(clusterModePlan(o), o.maxN);
    const maxN = Math.max(0, ...clusterSteps.map((s) => (s.kind === 'connect' ? s.to : 0)));
    return {
      steps: [],
      clusterSteps,
      clusterRuns: clusterModeRuns(o),
      eventsSteps: [],
      maxN,
      churnSize: 0,
      totalUsers: maxN,
      mode: o.profile ? 'cluster, profile' : o.quick ? 'cluster, quick' : 'cluster',
      attackerBase: maxN,
    };
  }
  const steps = o.hostileOnly ? [] : from(capped(plan(o), o.maxN), o.fromN);
  const hostile = hostilePlan(o);
  const cluster = o.cluster && !o.hostileOnly;
  const maxN = Math.max(...steps.map((s) => (s.kind === 'connect' ? s.to : 0)), ...(cluster ? clusterPlan(o).map((s) => (s.kind === 'connect' ? s.to : 0)) : [0]), ...eventsPlan(o).map((s) => (s.kind === 'connect' ? s.to : 0)), hostile?.online ?? 0);
  const churnSize = Math.max(0, ...steps.map((s) => (s.kind === 'churn' ? s.size : 0)));
  const mode = o.profile ? 'profile' : o.quick ? 'quick' : o.fromN !== undefined ? `full from N=${o.fromN}` : 'full';
  return {
    steps,
    clusterSteps: cluster ? capped(clusterPlan(o), o.maxN) : [],
    clusterRuns: [],
    eventsSteps: eventsPlan(o),
    maxN,
    churnSize,
    totalUsers: maxN + churnSize + (hostile?.joined ?? 0),
    mode: o.hostileOnly ? `${mode}, hostile clients only` : mode,
    hostile,
    attackerBase: maxN + churnSize,
  };
}

export const SUITE: SuitePlan = suitePlan(options);
