import { Injectable, Logger, UseGuards, UsePipes } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { AuthGuard } from '../auth/auth.guard';
import type { ChatClient } from '../messaging/chat-client';
import { AuthError } from '../protocol/errors';
import { FrameValidationPipe } from '../protocol/frame-validation.pipe';
import { MessageType } from '../protocol/protocol';
import { JoinOutcome, SessionService } from '../session/session.service';
import { AuthMessageDto } from './dto/auth-message.dto';

/**
 * AUTH_MESSAGE: a connection's own login (docs/protocol.md, "Authentication"), run by the gateway
 * when the token came with the upgrade or in the awaited AUTH_MESSAGE frame, never after AUTH
 * SUCCESS. AuthGuard checks the token and attaches the user; the session core then joins it.
 * Every refusal is an AuthError: ProtocolExceptionFilter answers AUTH_MESSAGE ERROR and closes.
 */
@Injectable()
export class LoginHandler {
  private readonly logger = new Logger(LoginHandler.name);

  constructor(private readonly sessions: SessionService) {}

  @UseGuards(AuthGuard)
  @UsePipes(FrameValidationPipe)
  @SubscribeMessage(MessageType.AUTH)
  async login(@ConnectedSocket() client: ChatClient, @MessageBody() _frame: AuthMessageDto): Promise<void> {
    switch (await this.sessions.join(client)) {
      case JoinOutcome.JOINED:
        this.logger.log({ connId: client.id }, 'authenticated');
        return;
      case JoinOutcome.CLOSED:
        return;
      case JoinOutcome.ALREADY_CONNECTED:
        throw AuthError.alreadyConnected();
      case JoinOutcome.UNAVAILABLE:
        throw AuthError.unavailable('presence unavailable');
    }
  }
}
