import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { RawData } from 'ws';
import { scanFrame } from '../protocol/frame-scan';
import { extractToken } from '../auth/token-extractor';
import { TokenService } from '../auth/token.service';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { JoinOutcome, PresenceService } from '../presence/presence.service';
import { AuthErrorCode, CloseCode, MessageType, Status } from '../protocol/protocol';
import type { ClientConnection } from './client-connection';
import { byteLength, frameBytes } from './message-router';

interface AuthFailure {
  errorCode: AuthErrorCode;
  message: string;
  close: CloseCode;
}

/** The AUTH_MESSAGE errors with their close codes; messages and close reasons never hold a token. */
const FAILURES = {
  missing: { errorCode: AuthErrorCode.INVALID_TOKEN, message: 'token not found or invalid', close: CloseCode.UNAUTHORIZED },
  invalid: { errorCode: AuthErrorCode.INVALID_TOKEN, message: 'token not found or invalid', close: CloseCode.UNAUTHORIZED },
  deadline: { errorCode: AuthErrorCode.INVALID_TOKEN, message: 'no token arrived in time', close: CloseCode.AUTH_DEADLINE },
  gaveWay: {
    errorCode: AuthErrorCode.INVALID_TOKEN,
    message: 'no token arrived in time: the node is full and gave your place to a login',
    close: CloseCode.AUTH_DEADLINE,
  },
  already: { errorCode: AuthErrorCode.ALREADY_CONNECTED, message: 'this user is already connected', close: CloseCode.ALREADY_CONNECTED },
  unavailable: {
    errorCode: AuthErrorCode.AUTH_UNAVAILABLE,
    message: 'authorization server unavailable, try again later',
    close: CloseCode.TRY_AGAIN_LATER,
  },
} satisfies Record<string, AuthFailure>;

/**
 * Authenticates a new connection: the token from the upgrade request (header, subprotocol, query
 * when allowed) or else from the first AUTH_MESSAGE frame within AUTH_DEADLINE_MS; then
 * CHECK_TOKEN and the presence join. Until AUTH SUCCESS every other frame is discarded.
 */
@Injectable()
export class Authenticator {
  private readonly logger = new Logger(Authenticator.name);

  constructor(
    private readonly tokens: TokenService,
    private readonly presence: PresenceService,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  start(connection: ClientConnection, request: IncomingMessage): void {
    const extracted = extractToken(request, this.config.allowQueryToken);
    if (extracted.kind === 'token') {
      this.authenticate(connection, extracted.token);
    } else if (extracted.kind === 'malformed') {
      this.fail(connection, FAILURES.invalid, `malformed token in ${extracted.source}`);
    } else {
      connection.awaitingAuthFrame = true;
      connection.authDeadline = setTimeout(() => this.fail(connection, FAILURES.deadline, 'auth deadline passed'), this.config.authDeadlineMs);
      connection.authDeadline.unref();
    }
  }

  /**
   * A frame before AUTH SUCCESS: the token-bearing AUTH_MESSAGE when one is awaited, else
   * discarded. Nothing is parsed beyond what finding the token needs: a frame over
   * PRE_AUTH_MAX_FRAME_BYTES closes the connection (1009), one that is not awaited is not looked
   * at, and only a frame whose top-level type reads AUTH_MESSAGE (or cannot be read without
   * parsing) is parsed, once it passed the depth scan.
   */
  onFrameBeforeAuth(connection: ClientConnection, data: RawData, isBinary: boolean): boolean {
    if (byteLength(data) > this.config.preAuthMaxFrameBytes) {
      if (connection.closeCode !== undefined) return false;
      this.logger.log({ connId: connection.id }, 'frame too large before login: closed');
      connection.close(CloseCode.MESSAGE_TOO_BIG, 'frame too large before login');
      return false;
    }
    if (!connection.awaitingAuthFrame || connection.authStarted || isBinary) return false;
    const bytes = frameBytes(data);
    const scan = scanFrame(bytes, this.config.maxJsonDepth);
    if (scan.tooDeep || (scan.type !== MessageType.AUTH && !scan.escapedKey)) return false;
    let frame: unknown;
    try {
      frame = JSON.parse(bytes.toString());
    } catch {
      return false;
    }
    if (typeof frame !== 'object' || frame === null || (frame as { type?: unknown }).type !== MessageType.AUTH) return false;
    connection.awaitingAuthFrame = false;
    connection.clearTimers();
    const serverData = (frame as { serverData?: unknown }).serverData;
    const token =
      typeof serverData === 'object' && serverData !== null ? (serverData as { authToken?: unknown }).authToken : undefined;
    if (typeof token !== 'string' || token.length === 0) {
      this.fail(connection, FAILURES.missing, 'AUTH_MESSAGE without a token');
    } else {
      this.authenticate(connection, token);
    }
    return true;
  }

  /** The node is full and a login needs this token-less connection's place: it gives way. */
  giveWay(connection: ClientConnection): void {
    connection.awaitingAuthFrame = false;
    this.fail(connection, FAILURES.gaveWay, 'gave way to a login (node full)');
  }

  private authenticate(connection: ClientConnection, token: string): void {
    connection.authStarted = true;
    connection.clearTimers();
    this.run(connection, token).catch((err: unknown) => {
      this.logger.error({ connId: connection.id, err: err instanceof Error ? err.stack : String(err) }, 'authentication failed');
      this.fail(connection, FAILURES.unavailable, 'internal error');
    });
  }

  private async run(connection: ClientConnection, token: string): Promise<void> {
    const check = await this.tokens.verify(token);
    if (!connection.isOpen) return;
    if (check.outcome === 'invalid') return this.fail(connection, FAILURES.invalid, 'token rejected');
    if (check.outcome === 'unavailable') return this.fail(connection, FAILURES.unavailable, `auth server: ${check.reason}`);
    const outcome = await this.presence.join(connection, check.profile);
    switch (outcome) {
      case JoinOutcome.JOINED:
        this.logger.log({ connId: connection.id }, 'authenticated');
        return;
      case JoinOutcome.ALREADY_CONNECTED:
        return this.fail(connection, FAILURES.already, 'user already connected');
      case JoinOutcome.UNAVAILABLE:
        return this.fail(connection, FAILURES.unavailable, 'presence unavailable');
      case JoinOutcome.CLOSED:
        return;
    }
  }

  private fail(connection: ClientConnection, failure: AuthFailure, why: string): void {
    if (!connection.isOpen) return;
    this.logger.log({ connId: connection.id, closeCode: failure.close }, `authentication refused: ${why}`);
    connection.send({
      type: MessageType.AUTH,
      status: Status.ERROR,
      error: { errorCode: failure.errorCode, message: failure.message },
    });
    connection.close(failure.close, failure.message);
  }
}
