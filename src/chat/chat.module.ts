import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { MessagingModule } from '../messaging/messaging.module';
import { chatOptionsProvider } from './chat.options';
import { ChatService } from './chat.service';

/** CHAT_MESSAGE. */
@Module({
  imports: [AuthModule, MessagingModule],
  providers: [ChatService, chatOptionsProvider],
  exports: [ChatService],
})
export class ChatModule {}
