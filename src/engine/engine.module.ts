import { DynamicModule, Global, Module } from '@nestjs/common';
import { AVATAR_INDEX } from '../avatar/avatar-index';
import { FileAvatarIndex } from '../avatar/file-avatar-index';
import type { GatewayConfig } from '../config/gateway-config';
import { CLUSTER_BUS, DEDUP_STORE, PRESENCE_REGISTRY } from './engine.ports';
import { MemoryClusterBus } from './memory/memory-cluster-bus';
import { MemoryDedupStore } from './memory/memory-dedup-store';
import { MemoryPresenceRegistry } from './memory/memory-presence-registry';

/**
 * The shared state of the deployment behind its ports: in memory on a single node (the default),
 * in Redis when REDIS_URL is set.
 */
@Global()
@Module({})
export class EngineModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: EngineModule,
      providers: [
        { provide: CLUSTER_BUS, useFactory: () => new MemoryClusterBus() },
        { provide: PRESENCE_REGISTRY, useFactory: () => new MemoryPresenceRegistry() },
        { provide: DEDUP_STORE, useFactory: () => new MemoryDedupStore(config.dedupWindowMs) },
        {
          provide: AVATAR_INDEX,
          useFactory: async () => {
            const index = new FileAvatarIndex(config.avatarDir);
            await index.init();
            return index;
          },
        },
      ],
      exports: [CLUSTER_BUS, PRESENCE_REGISTRY, DEDUP_STORE, AVATAR_INDEX],
    };
  }
}
