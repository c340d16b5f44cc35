import { HttpService } from '@nestjs/axios';
import { Inject, Injectable } from '@nestjs/common';
import { firstValueFrom } from 'rxjs';
import { AUTH_OPTIONS, type AuthOptions } from './auth.options';
import { Status, toProfile } from '../protocol/protocol';
import { parseExpiresAt, type TokenCheck, type TokenVerifier } from './token-verifier';

/** The 4xx statuses that say "not now" rather than "not this request": they mean unavailable. */
const RETRYABLE_CLIENT_ERRORS: ReadonlySet<number> = new Set([408, 429]);
const MAX_REPLY_BYTES = 64 * 1024;

/**
 * CHECK_TOKEN over HTTP: POST {"type":"CHECK_TOKEN","authToken":...} to AUTH_SERVER_URL.
 * 200 SUCCESS with a userId is a valid token; 200 ERROR, and any 4xx but 408 and 429 (the server
 * refused this very request: 400, 401, 403, 404, 413...), an invalid one; anything else (timeout,
 * refused, 5xx, 3xx, 408, 429, a 200 body of another shape) is "unavailable". A SUCCESS may carry
 * `serverData.expiresAt` (Unix ms as a decimal string): a malformed one makes the reply malformed
 * ("unavailable"); whether it has passed is TokenService's business (it owns the clock).
 *
 * The split matters beyond the error code: only "unavailable" counts toward the circuit breaker,
 * and what a client controls (the token, its size) must not be able to open it. A 4xx is the
 * authorization server answering about the request the client's token made.
 */
@Injectable()
export class HttpTokenVerifier implements TokenVerifier {
  constructor(
    private readonly http: HttpService,
    @Inject(AUTH_OPTIONS) private readonly config: AuthOptions,
  ) {}

  async verify(token: string): Promise<TokenCheck> {
    const url = this.config.authServerUrl;
    if (!url) return { outcome: 'unavailable', reason: 'no AUTH_SERVER_URL' };
    let status: number;
    let body: string;
    try {
      const response = await firstValueFrom(
        this.http.post<string>(
          url,
          { type: 'CHECK_TOKEN', authToken: token },
          {
            // axios's timeout is an idle timeout on the socket (a server that trickles its reply
            // never trips it); the signal bounds the whole request.
            timeout: this.config.authTimeoutMs,
            signal: AbortSignal.timeout(this.config.authTimeoutMs),
            maxRedirects: 0,
            maxContentLength: MAX_REPLY_BYTES,
            responseType: 'text',
            transformResponse: (data: unknown) => data,
            validateStatus: () => true,
            headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          },
        ),
      );
      status = response.status;
      body = typeof response.data === 'string' ? response.data : '';
    } catch (err) {
      // Never include the request (it holds the token) in the reason: only the error's code.
      const code = (err as { code?: unknown }).code;
      return { outcome: 'unavailable', reason: typeof code === 'string' ? code : 'request failed' };
    }
    return classifyReply(status, body);
  }
}

/** Classifies an authorization server's reply (exported for unit tests). */
export function classifyReply(status: number, body: string): TokenCheck {
  if (status >= 400 && status <= 499 && !RETRYABLE_CLIENT_ERRORS.has(status)) return { outcome: 'invalid' };
  if (status !== 200) return { outcome: 'unavailable', reason: `HTTP ${status}` };
  let reply: unknown;
  try {
    reply = JSON.parse(body);
  } catch {
    return { outcome: 'unavailable', reason: 'reply is not JSON' };
  }
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) {
    return { outcome: 'unavailable', reason: 'reply is not an object' };
  }
  const { status: verdict, serverData } = reply as Record<string, unknown>;
  if (verdict === Status.ERROR) return { outcome: 'invalid' };
  if (verdict !== Status.SUCCESS) return { outcome: 'unavailable', reason: 'reply has no SUCCESS or ERROR status' };
  if (typeof serverData !== 'object' || serverData === null || Array.isArray(serverData)) {
    return { outcome: 'unavailable', reason: 'SUCCESS without serverData' };
  }
  const profile = toProfile(serverData as Record<string, unknown>);
  if (profile.userId === '' || typeof (serverData as Record<string, unknown>).userId !== 'string') {
    return { outcome: 'unavailable', reason: 'SUCCESS without a userId' };
  }
  const expiresAt = parseExpiresAt((serverData as Record<string, unknown>).expiresAt);
  if (expiresAt === null) return { outcome: 'unavailable', reason: 'SUCCESS with a malformed expiresAt' };
  return expiresAt === undefined ? { outcome: 'valid', profile } : { outcome: 'valid', profile, expiresAt };
}
