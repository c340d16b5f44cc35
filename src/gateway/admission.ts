import type { IncomingMessage } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

export interface AdmissionVerdict {
  ok: boolean;
  status?: number;
  message?: string;
}

/**
 * Decides at the HTTP level whether an upgrade may proceed: a foreign Origin gets 403, a full or
 * shutting-down node 503. Nothing here looks at the token.
 */
@Injectable()
export class Admission {
  /** Set when the node starts shutting down: readiness 503, upgrades refused. */
  draining = false;

  constructor(@Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig) {}

  check(request: IncomingMessage, openConnections: number): AdmissionVerdict {
    const origin = request.headers.origin;
    if (origin !== undefined && this.config.allowedOrigins && !this.config.allowedOrigins.has(origin)) {
      return { ok: false, status: 403, message: 'Origin not allowed' };
    }
    if (this.draining) return { ok: false, status: 503, message: 'Shutting down' };
    if (openConnections >= this.config.maxConnections) return { ok: false, status: 503, message: 'Too many connections' };
    return { ok: true };
  }
}
