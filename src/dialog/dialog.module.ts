import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { EngineModule } from '../engine/engine.module';
import { MessagingModule } from '../messaging/messaging.module';
import { ObservabilityModule } from '../observability/observability.module';
import { dialogOptionsProvider } from './dialog.options';
import { DialogService } from './dialog.service';

/** DIALOG_MESSAGE and its DELIVERY_MESSAGE. */
@Module({
  imports: [AuthModule, EngineModule, MessagingModule, ObservabilityModule],
  providers: [DialogService, dialogOptionsProvider],
  exports: [DialogService],
})
export class DialogModule {}
