import { Module } from '@nestjs/common';
import { ChatModule } from '../chat/chat.module';
import { DialogModule } from '../dialog/dialog.module';
import { ObservabilityModule } from '../observability/observability.module';
import { SessionModule } from '../session/session.module';
import { apiOptionsProvider } from './api.options';
import { ApiListener } from './api-listener';
import { MessagesController } from './messages.controller';
import { OpenApiController, OpenApiDocument } from './openapi.controller';
import { UsersController } from './users.controller';

/**
 * The Server API (docs/protocol.md, "Server API"): the application's backend posts messages,
 * lists, disconnects and updates users, on a listener of its own (API_HOST:API_PORT), with a key.
 * Imported only when API_KEYS is set; setupServerApi() (setup-server-api.ts) installs the
 * listener's middleware and the OpenAPI document. The controllers call the same services as the
 * WebSocket handlers (SessionService, ChatService, DialogService): every call acts on the whole
 * deployment, from any node.
 */
@Module({
  imports: [SessionModule, ChatModule, DialogModule, ObservabilityModule],
  controllers: [MessagesController, UsersController, OpenApiController],
  providers: [apiOptionsProvider, ApiListener, OpenApiDocument],
  exports: [ApiListener],
})
export class ApiModule {}
