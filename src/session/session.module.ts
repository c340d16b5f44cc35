import { Module } from '@nestjs/common';
import { EngineModule } from '../engine/engine.module';
import { MessagingModule } from '../messaging/messaging.module';
import { sessionOptionsProvider } from './session.options';
import { SessionService } from './session.service';

/** The session core: who is online, single session per user, presence and profile broadcasts. */
@Module({
  imports: [EngineModule, MessagingModule],
  providers: [SessionService, sessionOptionsProvider],
  exports: [SessionService],
})
export class SessionModule {}
