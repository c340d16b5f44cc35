import { DynamicModule, Global, Module, Provider } from '@nestjs/common';
import { AVATAR_INDEX } from '../avatar/avatar-index';
import { FileAvatarIndex } from '../avatar/file-avatar-index';
import type { GatewayConfig } from '../config/gateway-config';
import { CLUSTER_BUS, DEDUP_STORE, PRESENCE_REGISTRY } from './engine.ports';
import { MemoryClusterBus } from './memory/memory-cluster-bus';
import { MemoryDedupStore } from './memory/memory-dedup-store';
import { MemoryPresenceRegistry } from './memory/memory-presence-registry';
import { MemoryQuotaStore } from './memory/memory-quota-store';
import { QUOTA_STORE } from './quota-store';
import { RedisEngine } from './redis/redis-engine';

/**
 * The shared state of the deployment behind its ports: in memory on a single node (the default),
 * in Redis when REDIS_URL is set (cluster mode). Global, so its shutdown hooks run after those of
 * the feature modules: the gateway's connections are closed before the engine leaves Redis.
 */
@Global()
@Module({})
export class EngineModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: EngineModule,
      providers: config.redisUrl ? redisProviders(config) : memoryProviders(config),
      exports: [CLUSTER_BUS, PRESENCE_REGISTRY, DEDUP_STORE, AVATAR_INDEX, QUOTA_STORE],
    };
  }
}

function memoryProviders(config: GatewayConfig): Provider[] {
  return [
    { provide: CLUSTER_BUS, useFactory: () => new MemoryClusterBus() },
    { provide: PRESENCE_REGISTRY, useFactory: () => new MemoryPresenceRegistry() },
    { provide: DEDUP_STORE, useFactory: () => new MemoryDedupStore(config.dedupWindowMs) },
    { provide: QUOTA_STORE, useFactory: () => new MemoryQuotaStore() },
    {
      provide: AVATAR_INDEX,
      useFactory: async () => {
        const index = new FileAvatarIndex(config.avatarDir);
        await index.init();
        return index;
      },
    },
  ];
}

function redisProviders(config: GatewayConfig): Provider[] {
  return [
    // Holds the connections; its onModuleInit starts them (in the background) and its
    // onApplicationShutdown leaves the registry and closes them.
    { provide: RedisEngine, useFactory: () => new RedisEngine(config) },
    { provide: CLUSTER_BUS, inject: [RedisEngine], useFactory: (engine: RedisEngine) => engine.bus },
    { provide: PRESENCE_REGISTRY, inject: [RedisEngine], useFactory: (engine: RedisEngine) => engine.presence },
    { provide: DEDUP_STORE, inject: [RedisEngine], useFactory: (engine: RedisEngine) => engine.dedup },
    { provide: AVATAR_INDEX, inject: [RedisEngine], useFactory: (engine: RedisEngine) => engine.avatars },
    { provide: QUOTA_STORE, inject: [RedisEngine], useFactory: (engine: RedisEngine) => engine.quotas },
  ];
}
