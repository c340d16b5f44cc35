import { DynamicModule, Global, Module } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from './gateway-config';

/**
 * Provides the configuration validated at boot (see loadConfig). The one global module: the root
 * of the graph, built from the config the app is created with. Every other module imports what it
 * uses and reads only its own slice of the configuration, through a provider of its own
 * (chat.options.ts, dialog.options.ts, ...).
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: GATEWAY_CONFIG, useValue: config }], exports: [GATEWAY_CONFIG] };
  }
}
