import { Logger } from '@nestjs/common';
import type { UserProfile } from '../../protocol/protocol';
import { listBytesOf, sessionValue, type PresenceRegistry, type Session } from '../engine.ports';
import { CLAIM, HEARTBEAT, LEAVE_NODE, RECONCILE, RELEASE, SWEEP, UPDATE_PROFILE } from './lua-scripts';
import type { RedisConnection } from './redis-connection';

export interface RedisPresenceOptions {
  /** PRESENCE_TTL_MS: the lease of a node; its users vanish this long after it stops renewing. */
  ttlMs: number;
  /** Lease renewal period (default ttl/3). */
  heartbeatMs?: number;
  /** Period of the sweep of dead nodes (default min(1000, ttl/3)). */
  sweepMs?: number;
  /** How long the tombstone of a swept node lives (default 1 h). */
  tombstoneMs?: number;
  /** How long a claim waits for a connection being (re)established (default 500 ms). */
  connectWaitMs?: number;
  /**
   * After a reconnection (not the first connection), how long this node does not sweep (default
   * min(ttl, 2000) ms): the other nodes lost Redis at the same moment and need as long to come
   * back and renew leases that expired meanwhile (a failover to a replica, a restart).
   */
  sweepGraceMs?: number;
}

/**
 * Presence on Redis.
 *
 * - Sessions: one hash, userId -> session JSON. Claim, release and every other change are Lua
 *   scripts, so two logins of one user on two nodes cannot both win.
 * - Leases: every node renews `lease:<nodeId>` (PX ttl) every ttl/3 and is in the `nodes` set; its
 *   users are in `node-users:<nodeId>`. A session is only ever written under a live lease.
 * - Sweep: every node, every second, runs one script that removes the sessions of every node
 *   whose lease expired; the node whose script removed them reports them to onExpired (so their
 *   DISCONNECT is broadcast exactly once) and leaves a tombstone `swept:<nodeId>`. After a
 *   reconnection a node waits `sweepGraceMs` before sweeping: leases that expired while Redis
 *   was away (or were lost in a failover) get their owners' next beat first.
 * - Recovery: this node keeps its own sessions in memory. When its lease was gone at a
 *   heartbeat (Redis restarted empty, or the node was cut off longer than the ttl), after any
 *   Redis failure, and on every reconnection (a Sentinel failover to a replica that missed the
 *   last writes included: whatever keys vanished), it reconciles Redis with that map: it removes its
 *   stale sessions (reported to onExpired), writes its live ones back, and closes the local
 *   connections of users that logged in elsewhere meanwhile (onSessionLost). When it had been
 *   swept, the sessions written back are reported to onSessionsRestored (their CONNECT).
 */
export class RedisPresenceRegistry implements PresenceRegistry {
  private readonly logger = new Logger('RedisPresence');
  /** This node's sessions, by user: the truth Redis is reconciled with. */
  private readonly local = new Map<string, Session>();
  private expiredHandler?: (userIds: string[]) => void;
  private lostHandler?: (session: Session) => void;
  private restoredHandler?: (sessions: Session[]) => void;
  private readonly gate = new Gate();
  private heartbeatTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private beating?: Promise<void>;
  /** Redis may differ from the local map (start, failure, reconnection): reconcile at the next beat. */
  private needsReconcile = true;
  /** The lease is held and Redis holds this node's sessions. */
  private registered = false;
  private closed = false;
  private readonly heartbeatMs: number;
  private readonly sweepMs: number;
  private readonly tombstoneMs: number;
  private readonly connectWaitMs: number;
  private readonly sweepGraceMs: number;
  /** Registered at least once: a ready connection is a reconnection. */
  private everRegistered = false;
  private sweepPausedUntil = 0;
  /** The online-list read in flight for logins, and the next one, shared by the logins that wait for it. */
  private listInFlight?: Promise<ListRead>;
  private listNext?: Promise<ListRead>;

  constructor(
    private readonly connection: RedisConnection,
    readonly nodeId: string,
    private readonly options: RedisPresenceOptions,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? Math.max(100, Math.floor(options.ttlMs / 3));
    this.sweepMs = options.sweepMs ?? Math.max(100, Math.min(1000, Math.floor(options.ttlMs / 3)));
    this.tombstoneMs = options.tombstoneMs ?? 3_600_000;
    this.connectWaitMs = options.connectWaitMs ?? 500;
    this.sweepGraceMs = options.sweepGraceMs ?? Math.min(options.ttlMs, 2000);
    connection.addHealthCheck(() => this.registered);
    connection.onReady(() => {
      // A new connection may be to a new server (a restart, a Sentinel failover) that lost some
      // of our writes: not registered (not ready) until reconciled there.
      this.registered = false;
      // The other nodes reconnect about now too: their leases that expired during the outage are
      // renewed by their next beat. Sweeping them first would announce their users gone and back.
      if (this.everRegistered) this.sweepPausedUntil = Date.now() + this.sweepGraceMs;
      this.needsReconcile = true;
      void this.beat();
    });
  }

  /** Starts the heartbeat and the sweep (in the background; the first beat is attempted now). */
  start(): void {
    this.heartbeatTimer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), this.sweepMs);
    this.sweepTimer.unref();
    void this.beat();
  }

  async claim(session: Session): Promise<boolean> {
    if (this.closed) throw new Error('presence registry closed');
    if (!(await this.connection.whenConnected(this.connectWaitMs))) throw new Error('redis unavailable');
    let result = await this.gate.shared(() => this.claimOnce(session));
    if (result === -1) {
      // Our lease is gone (Redis restarted, or we were cut off): re-register first.
      await this.beat();
      result = await this.gate.shared(() => this.claimOnce(session));
    }
    if (result === -1) throw new Error('presence lease not held');
    return result > 0;
  }

  async release(session: Session): Promise<boolean> {
    return this.gate.shared(async () => {
      const mine = this.local.get(session.userId);
      if (mine && mine.connId === session.connId) this.local.delete(session.userId);
      try {
        const removed = await RELEASE.run(this.connection.commands, [this.keys.sessions], [
          session.userId,
          session.connId,
          session.nodeId,
          this.keys.prefix,
        ]);
        return removed === 1;
      } catch (err) {
        // Redis still holds it: the reconciliation after the outage removes it (and reports it).
        this.needsReconcile = true;
        throw err;
      }
    });
  }

  async list(): Promise<UserProfile[]> {
    const values = await this.connection.commands.hvals(this.keys.sessions);
    const out: UserProfile[] = [];
    for (const value of values) {
      const session = parseSession(value);
      if (session) out.push(session.profile);
    }
    return out;
  }

  /**
   * The online list for logins, read with one HVALS however many logins wait for it: at most one
   * read is in flight per node; the logins that ask meanwhile share the next one, issued when it
   * settles (never the one in flight: it may have been issued before their client could receive
   * presence broadcasts, and would miss a user who joined in between). The JSON is serialized
   * once per read. So during a login storm Redis reads the list back to back at most, once per
   * node, instead of once per login (an HVALS of 100,000 sessions keeps Redis's one thread busy
   * for about 70 ms: docs/scaling.md).
   */
  listBytes(self: Session): Promise<readonly Buffer[]> {
    return this.sharedListRead().then((read) => (read.userIds.has(self.userId) ? read.bytes : [...read.bytes, Buffer.from(`,${JSON.stringify(self.profile)}`)]));
  }

  private sharedListRead(): Promise<ListRead> {
    if (!this.listInFlight) {
      this.listInFlight = this.readList().finally(() => {
        this.listInFlight = undefined;
      });
      return this.listInFlight;
    }
    if (!this.listNext) {
      // Settles after the `finally` above cleared the read in flight: this issues a new one.
      this.listNext = this.listInFlight
        .catch(() => undefined)
        .then(() => {
          this.listNext = undefined;
          return this.sharedListRead();
        });
    }
    return this.listNext;
  }

  private async readList(): Promise<ListRead> {
    const profiles = await this.list();
    return { userIds: new Set(profiles.map((p) => p.userId)), bytes: listBytesOf(profiles) };
  }

  async locate(userId: string): Promise<Session | undefined> {
    const mine = this.local.get(userId);
    if (mine) return mine;
    const value = await this.connection.commands.hget(this.keys.sessions, userId);
    return value === null ? undefined : parseSession(value);
  }

  async updateProfile(userId: string, patch: Partial<UserProfile>): Promise<void> {
    const mine = this.local.get(userId);
    // A new value: the session kept may be the caller's own frozen one (sessionValue).
    if (mine) this.local.set(userId, { ...mine, profile: Object.freeze({ ...mine.profile, ...patch, userId }) });
    try {
      await UPDATE_PROFILE.run(this.connection.commands, [this.keys.sessions], [userId, JSON.stringify(patch)]);
    } catch (err) {
      if (mine) this.needsReconcile = true; // written back with the new profile after the outage
      throw err;
    }
  }

  onExpired(handler: (userIds: string[]) => void): void {
    this.expiredHandler = handler;
  }

  onSessionLost(handler: (session: Session) => void): void {
    this.lostHandler = handler;
  }

  onSessionsRestored(handler: (sessions: Session[]) => void): void {
    this.restoredHandler = handler;
  }

  /** The lease is held and Redis is reconciled with this node's sessions. */
  get isRegistered(): boolean {
    return this.registered;
  }

  /**
   * Leaves the deployment: timers stop; if Redis answers, this node's remaining sessions are
   * removed and reported to onExpired (their DISCONNECT), and its lease and registration are
   * deleted. Otherwise the other nodes sweep them once the lease expires.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    this.registered = false;
    await this.beating?.catch(() => undefined);
    if (this.connection.commands.status !== 'ready') return;
    try {
      const removed = await LEAVE_NODE.run(
        this.connection.commands,
        [this.keys.sessions, this.keys.lease(this.nodeId), this.keys.nodeUsers(this.nodeId), this.keys.nodes],
        [this.nodeId],
      );
      this.local.clear();
      this.reportExpired(asStrings(removed));
    } catch (err) {
      this.logger.warn(`leaving the registry failed (the lease expires instead): ${String(err)}`);
    }
  }

  /** Renews the lease now, reconciling when needed (single flight; never rejects). */
  beat(): Promise<void> {
    if (!this.beating) {
      this.beating = this.doBeat().finally(() => {
        this.beating = undefined;
      });
    }
    return this.beating;
  }

  /** Runs one sweep of dead nodes now (never rejects). */
  async sweep(): Promise<void> {
    if (this.closed || this.connection.commands.status !== 'ready' || Date.now() < this.sweepPausedUntil) return;
    try {
      const gone = asStrings(
        await SWEEP.run(this.connection.commands, [this.keys.nodes, this.keys.sessions], [this.keys.prefix, this.tombstoneMs, this.nodeId]),
      );
      if (gone.length > 0) {
        this.logger.log(`swept ${gone.length} session(s) of dead node(s)`);
        this.reportExpired(gone);
      }
    } catch (err) {
      this.logger.debug(`sweep failed: ${String(err)}`);
    }
  }

  private get keys() {
    return this.connection.keys;
  }

  private async claimOnce(session: Session): Promise<number> {
    let result: number;
    try {
      result = Number(
        await CLAIM.run(
          this.connection.commands,
          [this.keys.sessions, this.keys.lease(this.nodeId), this.keys.nodeUsers(this.nodeId)],
          [session.userId, JSON.stringify(session), this.nodeId, session.connId, this.keys.prefix],
        ),
      );
    } catch (err) {
      // The claim may have been applied without us hearing the reply: reconcile removes it.
      this.needsReconcile = true;
      throw err;
    }
    if (result > 0) this.local.set(session.userId, sessionValue(session));
    // Claimed over the session of a dead node that was not swept yet: its DISCONNECT goes first.
    if (result === 2) this.reportExpired([session.userId]);
    return result;
  }

  private async doBeat(): Promise<void> {
    if (this.closed) return;
    if (this.connection.commands.status !== 'ready') {
      this.markDown();
      return;
    }
    try {
      const reply = await HEARTBEAT.run(
        this.connection.commands,
        [this.keys.lease(this.nodeId), this.keys.nodes, this.keys.swept(this.nodeId)],
        [this.nodeId, this.options.ttlMs],
      );
      const [existed, swept] = Array.isArray(reply) ? reply.map(Number) : [0, 0];
      if (this.closed) return;
      if (existed !== 1 || swept === 1 || this.needsReconcile) {
        if (existed !== 1) this.logger.log(swept === 1 ? 'lease had expired and this node was swept: re-registering' : 'lease missing: registering');
        await this.reconcile(swept === 1);
      }
      this.registered = true;
      this.everRegistered = true;
    } catch (err) {
      this.logger.debug(`heartbeat failed: ${String(err)}`);
      this.markDown();
    }
  }

  private markDown(): void {
    this.registered = false;
    this.needsReconcile = true;
  }

  private async reconcile(wasSwept: boolean): Promise<void> {
    const outcome = await this.gate.exclusive(async () => {
      this.needsReconcile = false;
      const sessions = [...this.local.values()];
      let reply: unknown;
      try {
        reply = await RECONCILE.run(
          this.connection.commands,
          [this.keys.sessions, this.keys.lease(this.nodeId), this.keys.nodeUsers(this.nodeId)],
          [this.nodeId, this.keys.prefix, ...sessions.map((s) => JSON.stringify(s))],
        );
      } catch (err) {
        this.needsReconcile = true;
        throw err;
      }
      if (!Array.isArray(reply)) throw new Error('lease lost during reconciliation');
      const removed = asStrings(reply[0]);
      const codes = asStrings(reply[1]);
      const restored: Session[] = [];
      const lost: Session[] = [];
      sessions.forEach((session, i) => {
        if (codes[i] === 'R') restored.push(session);
        else if (codes[i] === 'L') {
          lost.push(session);
          this.local.delete(session.userId);
        }
      });
      return { removed, restored, lost };
    });
    if (outcome.removed.length + outcome.restored.length + outcome.lost.length > 0) {
      this.logger.log(
        `reconciled: ${outcome.removed.length} stale removed, ${outcome.restored.length} restored, ${outcome.lost.length} lost to other nodes`,
      );
    }
    this.reportExpired(outcome.removed);
    for (const session of outcome.lost) this.call('session lost', () => this.lostHandler?.(session));
    if (wasSwept && outcome.restored.length > 0) this.call('sessions restored', () => this.restoredHandler?.(outcome.restored));
  }

  private reportExpired(userIds: string[]): void {
    if (userIds.length > 0) this.call('expired', () => this.expiredHandler?.(userIds));
  }

  private call(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error(`${what} handler failed: ${err instanceof Error ? err.stack : String(err)}`);
    }
  }
}

/** One read of the online list for logins: its JSON and who is in it. */
interface ListRead {
  userIds: ReadonlySet<string>;
  bytes: readonly Buffer[];
}

function parseSession(value: string): Session | undefined {
  try {
    const session = JSON.parse(value) as Session;
    return session && typeof session === 'object' && session.profile ? session : undefined;
  } catch {
    return undefined;
  }
}

function asStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/**
 * Claims and releases run concurrently (shared); a reconciliation runs alone (exclusive): it waits
 * for the operations in flight and holds back new ones, so it never sees a claim half applied.
 */
class Gate {
  private active = 0;
  private exclusiveRun?: Promise<void>;
  private drained?: () => void;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveRun) await this.exclusiveRun;
    this.active += 1;
    try {
      return await fn();
    } finally {
      this.active -= 1;
      if (this.active === 0) this.drained?.();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveRun) await this.exclusiveRun;
    let done!: () => void;
    this.exclusiveRun = new Promise<void>((resolve) => (done = resolve));
    try {
      while (this.active > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.drained = undefined;
      return await fn();
    } finally {
      this.exclusiveRun = undefined;
      done();
    }
  }
}
