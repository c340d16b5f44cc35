import { ArgumentsHost, Catch, Injectable, Logger, type WsExceptionFilter } from '@nestjs/common';
import { toWireAnswer } from '../protocol/errors';
import type { ChatClient } from '../messaging/chat-client';

/**
 * The exception filter of every message handler (docs/protocol.md, "Invalid frames"): maps what a
 * handler, its pipes or its guards throw to the wire through the one table of
 * src/protocol/errors.ts. It is the default, as Nest's BaseWsExceptionFilter is for gateways: a
 * filter of a handler's own (`@UseFilters`) or a global one that catches the exception comes first.
 * An exception the table does not know is a bug: logged (with the connection id, never the frame),
 * not answered, and the connection stays usable.
 */
@Catch()
@Injectable()
export class ProtocolExceptionFilter implements WsExceptionFilter {
  private readonly logger = new Logger('ProtocolExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    const client = ws.getClient<ChatClient>();
    const pattern = ws.getPattern?.();
    const answer = toWireAnswer(exception, typeof pattern === 'string' ? pattern : undefined);
    if (!answer) {
      this.logger.error({ connId: client.id, requestType: pattern, err: exception instanceof Error ? exception.stack : String(exception) }, 'handler failed');
      return;
    }
    if (!client.isOpen) return;
    client.send(answer.frame);
    if (answer.close !== undefined) {
      this.logger.log({ connId: client.id, closeCode: answer.close }, `authentication refused: ${answer.why ?? answer.frame.error.message}`);
      client.close(answer.close, answer.frame.error.message);
    }
  }
}
