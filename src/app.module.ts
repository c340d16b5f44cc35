import { DynamicModule, Module, type ModuleMetadata } from '@nestjs/common';
import { ApiModule } from './api/api.module';
import { AvatarModule } from './avatar/avatar.module';
import { ChatModule } from './chat/chat.module';
import { ConfigModule } from './config/config.module';
import type { GatewayConfig } from './config/gateway-config';
import { DialogModule } from './dialog/dialog.module';
import { EventsModule } from './events/events.module';
import { GatewayModule } from './gateway/gateway.module';
import { HealthModule } from './health/health.module';
import { LoggingModule, type LoggingOptions } from './logging/logging.module';
import { ObservabilityModule } from './observability/observability.module';
import { TokenModule } from './token/token.module';
import { WebModule } from './web/web.module';

export interface AppOptions extends LoggingOptions {
  /**
   * More feature modules (a message type of your own, say: see README, "Add a message type").
   * Their `@SubscribeMessage` handlers join the gateway's message types; nothing else changes.
   */
  imports?: ModuleMetadata['imports'];
}

@Module({})
export class AppModule {
  static forRoot(config: GatewayConfig, options: AppOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(config, options),
        ObservabilityModule,
        GatewayModule,
        ChatModule,
        DialogModule,
        AvatarModule,
        TokenModule,
        HealthModule,
        ...(config.demoPage ? [WebModule] : []),
        ...(config.eventsNatsUrls ? [EventsModule] : []),
        ...(config.apiKeys ? [ApiModule] : []),
        ...(options.imports ?? []),
      ],
    };
  }
}
