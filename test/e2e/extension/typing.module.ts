/**
 * The worked example of README, "Add a message type": a feature module of the kind a team adds to
 * the gateway, written the way the Nest docs teach (a @WebSocketGateway class with a DTO validated
 * by ValidationPipe, a guard, an interceptor and an exception filter of its own). Nothing of the
 * gateway is edited: the module is imported beside the others.
 *
 *   client -> server  {"type":"TYPING_MESSAGE","serverData":{"receiver":"<userId>"}}
 *   server -> receiver {"type":"TYPING_MESSAGE","serverData":{"sender":"<userId>","stamp":"<n>"}}
 *   server -> sender   {"type":"TYPING_ACK","serverData":{"receiver":"<userId>"}}  (what the handler returns)
 *   server -> sender   {"type":"TYPING_ERROR","serverData":{"reason":"..."}}     (its own filter)
 */
import {
  CallHandler,
  CanActivate,
  Catch,
  ExecutionContext,
  Injectable,
  Module,
  NestInterceptor,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
  type ArgumentsHost,
  type WsExceptionFilter,
} from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  OnGatewayConnection,
  OnGatewayDisconnect,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { Type } from 'class-transformer';
import { Equals, IsNotEmpty, IsObject, IsString, ValidateNested } from 'class-validator';
import type { Observable } from 'rxjs';
import { tap } from 'rxjs/operators';
import { AuthGuard } from '../../../src/auth/auth.guard';
import { AuthModule } from '../../../src/auth/auth.module';
import type { ChatClient } from '../../../src/messaging/chat-client';
import { Messenger } from '../../../src/messaging/messenger';
import { MessagingModule } from '../../../src/messaging/messaging.module';

export class TypingServerDataDto {
  @IsString()
  @IsNotEmpty()
  receiver!: string;
}

export class TypingDto {
  @Equals('TYPING_MESSAGE')
  type!: 'TYPING_MESSAGE';

  @IsObject()
  @ValidateNested()
  @Type(() => TypingServerDataDto)
  serverData!: TypingServerDataDto;
}

/** What the example's guard, interceptor, filter and hooks saw (the test reads it). */
export const seen: string[] = [];

/** Thrown by the handler for a receiver that is not online: caught by TypingFilter, not by the gateway's filter. */
export class NobodyThere extends Error {}

/** The module's own guard: nobody may tell the user "blocked" that they are typing. */
@Injectable()
export class NotBlockedGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const body = context.switchToWs().getData<{ serverData?: { receiver?: unknown } }>();
    seen.push(`guard:${context.getType()}:${context.switchToWs().getClient<ChatClient>().userId}`);
    return body?.serverData?.receiver !== 'blocked';
  }
}

/** The module's own interceptor: runs around the handler, and sees what it returns. */
@Injectable()
export class TypingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    seen.push(`before:${context.switchToWs().getPattern()}`);
    return next.handle().pipe(tap((result: { type?: string }) => seen.push(`after:${result?.type}`)));
  }
}

/** The module's own filter, for its own error. */
@Catch(NobodyThere)
export class TypingFilter implements WsExceptionFilter {
  catch(exception: NobodyThere, host: ArgumentsHost): void {
    seen.push('filter');
    host.switchToWs().getClient<ChatClient>().send(JSON.stringify({ type: 'TYPING_ERROR', serverData: { reason: exception.message } }));
  }
}

@WebSocketGateway()
@UseInterceptors(TypingInterceptor)
@UseFilters(TypingFilter)
export class TypingGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private stamp = 0;

  constructor(private readonly messenger: Messenger) {}

  handleConnection(client: ChatClient): void {
    seen.push(`connect:${client.id}`);
  }

  handleDisconnect(client: ChatClient): void {
    seen.push(`disconnect:${client.id}`);
  }

  @UseGuards(AuthGuard, NotBlockedGuard)
  @UsePipes(new ValidationPipe())
  @SubscribeMessage('TYPING_MESSAGE')
  typing(@ConnectedSocket() client: ChatClient, @MessageBody() body: TypingDto): Promise<object> {
    const { receiver } = body.serverData;
    const frame = JSON.stringify({ type: 'TYPING_MESSAGE', serverData: { sender: client.userId, stamp: String(++this.stamp) } });
    // What the handler returns is sent to the client (as with Nest's platform-ws): an acknowledgement.
    return new Promise((resolve, reject) =>
      this.messenger.deliver(receiver, frame, 2000, (status) =>
        status === 'SUCCESS' ? resolve({ type: 'TYPING_ACK', serverData: { receiver } }) : reject(new NobodyThere(`${receiver} is not online`)),
      ),
    );
  }
}

@Module({
  imports: [AuthModule, MessagingModule],
  providers: [TypingGateway, NotBlockedGuard, TypingInterceptor],
})
export class TypingModule {}
