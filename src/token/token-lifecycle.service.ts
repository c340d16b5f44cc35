import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Counter } from 'prom-client';
import { TokenHolders } from '../auth/token-holders';
import type { TokenCheck } from '../auth/token-verifier';
import { TokenService } from '../auth/token.service';
import type { ChatClient } from '../messaging/chat-client';
import { MetricsService } from '../observability/metrics.service';
import { CloseCode, TokenCloseReason } from '../protocol/protocol';
import { SessionService } from '../session/session.service';
import { ExpiryScheduler, type ExpiryEntry } from './expiry-scheduler';
import { SpreadWalker } from './spread-walker';
import { TOKEN_OPTIONS, type TokenOptions } from './token.options';

/** What `gateway_token_events_total{event}` counts. */
export type TokenEvent =
  /** A connection closed with 4401 `token expired`. */
  | 'expired'
  /** A connection closed with 4401 `token revoked` by the re-check. */
  | 'revoked'
  /** A TOKEN_REFRESH_MESSAGE answered SUCCESS. */
  | 'refreshed'
  /** A TOKEN_REFRESH_MESSAGE answered "2" (invalid, or another user's token): closed with 4401. */
  | 'refresh_invalid'
  /** A TOKEN_REFRESH_MESSAGE answered "3": the connection kept its old token. */
  | 'refresh_unavailable'
  /** A re-check the authorization server could not answer: the connection was kept. */
  | 'recheck_unavailable';

/**
 * The token lifecycle of this node's connections (docs/protocol.md, "Token lifecycle"):
 * - expiry: every connection whose token has an `expiresAt` has one entry in one schedule
 *   (ExpiryScheduler: a min-heap on a single timer); when it passes, the connection is closed with
 *   4401 `token expired` and its DISCONNECT goes out, unless a refresh moved it first;
 * - re-check (AUTH_RECHECK_INTERVAL_MS, 0 = never): every live connection's current token is
 *   checked again through TokenService (its cache, single flight and bounds), the connections
 *   spread over the interval by one timer (SpreadWalker); "2" closes with 4401 `token revoked`,
 *   "3" keeps the connection, a valid answer takes its (possibly new) expiresAt.
 * The connections come from AuthGuard (TokenHolders) once their token is verified; with expiry
 * and re-check both off, a connection costs nothing here. A connection costs one entry otherwise.
 */
@Injectable()
export class TokenLifecycle implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(TokenLifecycle.name);
  /** Connections followed here, with their expiry entry (index -1 when their token does not expire). */
  private readonly tracked = new Map<ChatClient, ExpiryEntry<ChatClient>>();
  private readonly expiries = new ExpiryScheduler<ChatClient>((client) => this.expire(client));
  private walker?: SpreadWalker<ExpiryEntry<ChatClient>>;
  private stopListening?: () => void;
  private readonly events: Counter<'event'>;

  constructor(
    private readonly holders: TokenHolders,
    private readonly tokens: TokenService,
    private readonly sessions: SessionService,
    metrics: MetricsService,
    @Inject(TOKEN_OPTIONS) private readonly options: TokenOptions,
  ) {
    this.events = new Counter({
      name: 'gateway_token_events_total',
      help: 'Token lifecycle events: expired, revoked, refreshed, refresh_invalid, refresh_unavailable, recheck_unavailable',
      labelNames: ['event'],
      registers: [metrics.registry],
    });
  }

  onModuleInit(): void {
    this.stopListening = this.holders.listen((client) => this.track(client));
    if (this.options.authRecheckIntervalMs > 0) {
      this.walker = new SpreadWalker(this.tracked, this.options.authRecheckIntervalMs, (entry) => this.recheck(entry.item));
      this.walker.start();
    }
  }

  onModuleDestroy(): void {
    this.stopListening?.();
    this.walker?.stop();
    this.expiries.clear();
    this.tracked.clear();
  }

  /** Connections followed (for tests and metrics). */
  get size(): number {
    return this.tracked.size;
  }

  /** Connections whose token expiry is scheduled. */
  get scheduled(): number {
    return this.expiries.size;
  }

  count(event: TokenEvent): void {
    this.events.inc({ event });
  }

  /**
   * A connection holds a verified token (its login, a refresh): follow it, its expiry scheduled at
   * the token's expiresAt (or unscheduled when it has none).
   */
  track(client: ChatClient): void {
    let entry = this.tracked.get(client);
    if (!entry) {
      // Nothing to do for it: no expiry, no re-check (a later refresh with an expiry tracks it then).
      if (client.tokenExpiresAt === undefined && !this.walker) return;
      if (!client.isOpen) return;
      entry = this.expiries.entry(client);
      this.tracked.set(client, entry);
      client.onClosed(() => this.untrack(client));
    }
    const at = client.tokenExpiresAt;
    if (at === undefined) this.expiries.cancel(entry);
    else this.expiries.schedule(entry, at);
  }

  /** Stops following a connection (it closed). */
  untrack(client: ChatClient): void {
    const entry = this.tracked.get(client);
    if (!entry) return;
    this.expiries.cancel(entry);
    this.tracked.delete(client);
  }

  /**
   * Closes a logged-in connection whose token no longer stands: 4401 with `reason`, its
   * DISCONNECT to everyone else (the session leaves with 4401). Resolves once it has left.
   */
  async closeUnauthorized(client: ChatClient, reason: string): Promise<void> {
    this.untrack(client);
    if (!client.isOpen) return;
    this.logger.log({ connId: client.id, closeCode: CloseCode.UNAUTHORIZED }, `${reason}: closed`);
    client.close(CloseCode.UNAUTHORIZED, reason);
    try {
      await this.sessions.leave(client, CloseCode.UNAUTHORIZED);
    } catch (err) {
      this.logger.warn({ connId: client.id, err: String(err) }, 'leave failed');
    }
  }

  /** The expiry of a connection's token has passed (the scheduler unscheduled it). */
  private expire(client: ChatClient): void {
    if (!client.isOpen) {
      this.untrack(client);
      return;
    }
    this.count('expired');
    void this.closeUnauthorized(client, TokenCloseReason.EXPIRED);
  }

  /** The re-check of one connection: its current token, checked again. */
  private recheck(client: ChatClient): void {
    const token = client.token;
    if (!client.isJoined || token === undefined) return;
    this.tokens.verify(token).then(
      (check) => this.rechecked(client, token, check),
      (err: unknown) => this.logger.error({ connId: client.id, err: String(err) }, 'token re-check failed'),
    );
  }

  private rechecked(client: ChatClient, token: string, check: TokenCheck): void {
    // Closed meanwhile, or refreshed to another token (that one was checked by its refresh).
    if (!client.isOpen || client.token !== token || !this.tracked.has(client)) return;
    if (check.outcome === 'unavailable') {
      this.count('recheck_unavailable');
      this.logger.debug({ connId: client.id }, `token re-check: authorization server unavailable (${check.reason}), kept`);
      return;
    }
    if (check.outcome === 'invalid' || check.profile.userId !== client.userId) {
      this.count('revoked');
      void this.closeUnauthorized(client, TokenCloseReason.REVOKED);
      return;
    }
    // Still valid: its expiry is the authorization server's latest word.
    client.renewCredential(check.expiresAt === undefined ? { token } : { token, expiresAt: check.expiresAt });
    this.track(client);
  }
}
