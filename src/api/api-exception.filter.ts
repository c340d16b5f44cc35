import type { IncomingMessage, ServerResponse } from 'node:http';
import { Catch, HttpException, HttpStatus, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { NodeUnreachableError } from '../session/node-unreachable.error';
import type { ApiErrorBody } from './api-errors';
import { viaApiListener } from './api-listener';

/**
 * Every error of a Server API call as JSON `{"error": "..."}` (with `fields` on a 400), whatever
 * threw it: the guard (401, with `WWW-Authenticate: Bearer`), the body parser and the
 * ValidationPipe (400, 415), the handlers (404; 503 when the user's node does not answer). Anything else is logged and answered 500 without
 * its details.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ServerApi');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<ServerResponse>();
    const req = host.switchToHttp().getRequest<IncomingMessage>();
    if (!viaApiListener(req)) {
      // Through the public port (ApiListenerGuard): the answer of a route that does not exist.
      this.write(res, HttpStatus.NOT_FOUND, { message: `Cannot ${req.method} ${(req.url ?? '/').split('?')[0]}`, error: 'Not Found', statusCode: 404 });
      return;
    }
    let status = HttpStatus.INTERNAL_SERVER_ERROR;
    let body: ApiErrorBody = { error: 'internal error' };
    if (exception instanceof HttpException) {
      status = exception.getStatus();
      const answer = exception.getResponse();
      body =
        typeof answer === 'object' && answer !== null && typeof (answer as ApiErrorBody).error === 'string' && !('statusCode' in answer)
          ? (answer as ApiErrorBody)
          : { error: exception.message };
      if (status === HttpStatus.BAD_REQUEST && body.fields === undefined) body = { ...body, fields: [] };
    } else if (exception instanceof NodeUnreachableError) {
      // Nothing is known of what happened there: the caller may retry (the node comes back, or
      // its users are swept within PRESENCE_TTL_MS and the user is then not online).
      status = HttpStatus.SERVICE_UNAVAILABLE;
      body = { error: exception.message };
      if (!res.headersSent) res.setHeader('Retry-After', '1');
    } else {
      this.logger.error(`server API call failed: ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`);
    }
    if (status === HttpStatus.UNAUTHORIZED && !res.headersSent) res.setHeader('WWW-Authenticate', 'Bearer realm="chat-gateway server API"');
    this.write(res, status, body);
  }

  private write(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.setHeader('Cache-Control', 'no-store');
    res.end(text);
  }
}
