import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { ApiListener } from './api-listener';
import { ApiModule } from './api.module';
import { OpenApiDocument } from './openapi.controller';
import { API_KEY_SCHEME } from './server-api.decorators';

/**
 * What the Server API needs from the application object, before it is initialized: its
 * listener's middleware ahead of Nest's body parser and routes (so the two listeners are told
 * apart before anything else runs), and the OpenAPI document of ApiModule's routes.
 */
export function setupServerApi(app: NestExpressApplication): void {
  app.use(app.get(ApiListener).middleware);
  const config = new DocumentBuilder()
    .setTitle('chat-gateway server API')
    .setDescription(
      "The application's backend talks to the gateway (docs/protocol.md, \"Server API\"): every call acts on the whole deployment, " +
        'from any node. Every call but this document needs `Authorization: Bearer <key>` (one of API_KEYS).',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'One of the keys of API_KEYS' }, API_KEY_SCHEME)
    .build();
  app.get(OpenApiDocument).setFactory(() => SwaggerModule.createDocument(app, config, { include: [ApiModule] }));
}
