import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { compactJsonText, scanFrame } from '../protocol/frame-scan';
import { badRequest, unsupportedMediaType } from './api-errors';
import { apiBodyOf } from './api-listener';
import { API_OPTIONS, type ApiOptions } from './api.options';

/** The top-level `clientData` of a request body as written (whitespace between tokens removed). */
const RAW_CLIENT_DATA = Symbol('rawClientData');

type ParsedRequest = IncomingMessage & { body?: unknown; [RAW_CLIENT_DATA]?: string };

/** The body's top-level clientData as the caller wrote it, if it was read so (see ApiBodyInterceptor). */
export function rawClientDataOf(req: IncomingMessage): string | undefined {
  return (req as ParsedRequest)[RAW_CLIENT_DATA];
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)/i;

/**
 * Parses a Server API request's body, after the key was checked (ApiKeyGuard runs first, so a
 * request without a key gets 401 whatever its body), into `req.body` for the ValidationPipe:
 * - no body: `{}` (the DTO names the fields that are missing);
 * - a body that is not `application/json` (or `+json`) in UTF-8: 415;
 * - JSON nested deeper than MAX_JSON_DEPTH (refused by a linear scan, unparsed), not JSON, or not
 *   an object: 400 `{"error": "...", "fields": []}`.
 * The same scan finds the top-level `clientData`: it is kept as written, so a dialog forwards it
 * byte-exact, numbers beyond a double included (as on the WebSocket).
 */
@Injectable()
export class ApiBodyInterceptor implements NestInterceptor {
  constructor(@Inject(API_OPTIONS) private readonly options: Pick<ApiOptions, 'maxJsonDepth'>) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<ParsedRequest>();
    const { body, rawClientData } = parseApiBody(apiBodyOf(req), req.headers['content-type'], this.options.maxJsonDepth);
    req.body = body;
    if (rawClientData !== undefined) req[RAW_CLIENT_DATA] = rawClientData;
    return next.handle();
  }
}

export interface ParsedBody {
  body: Record<string, unknown>;
  /** The top-level clientData as written (whitespace between tokens removed), when it could be located. */
  rawClientData?: string;
}

/** The rules of ApiBodyInterceptor on a body's bytes and its Content-Type; throws the 400 or 415. */
export function parseApiBody(bytes: Buffer, contentType: string | undefined, maxJsonDepth: number): ParsedBody {
  if (bytes.length === 0) return { body: {} };
  const type = contentType ?? '';
  if (!JSON_TYPE.test(type)) throw unsupportedMediaType('the body must be JSON (Content-Type: application/json)');
  const charset = CHARSET.exec(type)?.[1].toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw unsupportedMediaType('the body must be UTF-8');
  const scan = scanFrame(bytes, maxJsonDepth);
  if (scan.tooDeep) throw badRequest(`the body is nested deeper than ${maxJsonDepth} levels`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw badRequest('the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('the body must be a JSON object');
  const body = value as Record<string, unknown>;
  if (scan.clientDataStart < 0 || scan.escapedKey) return { body };
  return { body, rawClientData: compactJsonText(bytes, scan.clientDataStart, scan.clientDataEnd) };
}
