import type { IncomingMessage } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { extractToken } from '../auth/token-extractor';
import { DrainState } from '../lifecycle/drain-state';
import { GATEWAY_LIMITS, type GatewayLimits } from './gateway-limits';

export interface AdmissionVerdict {
  ok: boolean;
  status?: number;
  message?: string;
}

/** The node's open connections, as admission sees them. */
export interface ConnectionPool {
  /** Open connections that count toward MAX_CONNECTIONS (logged in or not). */
  readonly openCount: number;
  /** Closes the oldest idle token-less connection to make room for a login; false when there is none. */
  makeRoom(): boolean;
}

/**
 * Decides at the HTTP level whether an upgrade may proceed: a foreign Origin gets 403, a full or
 * shutting-down node 503. When the node is full, an upgrade that offers a token takes the place
 * of an idle connection that never sent one: token-less connections cannot starve logins, however
 * many one peer opens. The token is not checked here, only whether one is offered.
 */
@Injectable()
export class Admission {
  private pool?: ConnectionPool;

  constructor(
    @Inject(GATEWAY_LIMITS) private readonly config: Pick<GatewayLimits, 'allowedOrigins' | 'maxConnections' | 'allowQueryToken'>,
    private readonly drain: DrainState,
  ) {}

  /** The gateway hands over its connections once it is up. */
  attach(pool: ConnectionPool): void {
    this.pool = pool;
  }

  check(request: IncomingMessage): AdmissionVerdict {
    const origin = request.headers.origin;
    if (origin !== undefined && this.config.allowedOrigins && !this.config.allowedOrigins.has(origin)) {
      return { ok: false, status: 403, message: 'Origin not allowed' };
    }
    if (this.drain.draining) return { ok: false, status: 503, message: 'Shutting down' };
    const pool = this.pool;
    if (pool && pool.openCount >= this.config.maxConnections) {
      const offersToken = extractToken(request, this.config.allowQueryToken).kind === 'token';
      if (!offersToken || !pool.makeRoom()) return { ok: false, status: 503, message: 'Too many connections' };
    }
    return { ok: true };
  }
}
