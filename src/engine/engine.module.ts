import { Module, type Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { ObservabilityModule } from '../observability/observability.module';
import { MetricsService } from '../observability/metrics.service';
import { AVATAR_INDEX, CLUSTER_BUS, DEDUP_STORE, PRESENCE_REGISTRY, QUOTA_STORE } from './engine.ports';
import type { AvatarIndex, ClusterBus, DedupStore, PresenceRegistry, QuotaStore } from './engine.ports';
import { FileAvatarIndex } from './memory/file-avatar-index';
import { MemoryClusterBus } from './memory/memory-cluster-bus';
import { MemoryDedupStore } from './memory/memory-dedup-store';
import { MemoryPresenceRegistry } from './memory/memory-presence-registry';
import { MemoryQuotaStore } from './memory/memory-quota-store';
import { RedisEngine } from './redis/redis-engine';

/** The shared state of a deployment: the five ports, all from one implementation. */
export interface Engine {
  readonly bus: ClusterBus;
  readonly presence: PresenceRegistry;
  readonly dedup: DedupStore;
  readonly avatars: AvatarIndex;
  readonly quotas: QuotaStore;
}

/** The in-memory engine of a single node. */
async function memoryEngine(config: GatewayConfig): Promise<Engine> {
  const avatars = new FileAvatarIndex(config.avatarDir);
  await avatars.init();
  return {
    bus: new MemoryClusterBus(),
    presence: new MemoryPresenceRegistry(),
    dedup: new MemoryDedupStore(config.dedupWindowMs),
    avatars,
    quotas: new MemoryQuotaStore(),
  };
}

/** What the cluster engine reports on /metrics: how deliveries to other nodes went, and the node links. */
function clusterMetrics(engine: RedisEngine, metrics: MetricsService): void {
  metrics.addCounterSource(
    'gateway_node_deliveries_total',
    'Dialog deliveries handed to another node, by path: on a node link, or through Redis (no link, or while it is down)',
    'path',
    engine.bus.deliveriesByPath,
  );
  const links = engine.links;
  if (links) {
    metrics.addGaugeSource('gateway_node_links', 'Open node links: opened by this node (out) and accepted from others (in)', 'direction', () => links.openLinks);
  }
}

/** The engine itself (tests reach the RedisEngine of a node through it). */
export const ENGINE = Symbol('ENGINE');

const port = (token: symbol, pick: (engine: Engine) => unknown): Provider => ({ provide: token, inject: [ENGINE], useFactory: pick });

/**
 * The shared state of the deployment behind its ports: in memory on a single node (the default),
 * in Redis when REDIS_URL or REDIS_SENTINELS is set (cluster mode). Modules that use a port import this module.
 * Imported below every feature, its shutdown hooks run after theirs (Nest shuts the modules down
 * from the root outwards): the gateway's connections are closed before the engine leaves Redis.
 * A RedisEngine connects in its onModuleInit and leaves the registry in its onApplicationShutdown.
 */
@Module({
  imports: [ObservabilityModule],
  providers: [
    {
      provide: ENGINE,
      inject: [GATEWAY_CONFIG, { token: MetricsService, optional: true }],
      useFactory: (config: GatewayConfig, metrics?: MetricsService): Engine | Promise<Engine> => {
        if (!config.redisUrl && !config.redisSentinels) return memoryEngine(config);
        const engine = new RedisEngine(config);
        if (metrics) clusterMetrics(engine, metrics);
        return engine;
      },
    },
    port(CLUSTER_BUS, (engine) => engine.bus),
    port(PRESENCE_REGISTRY, (engine) => engine.presence),
    port(DEDUP_STORE, (engine) => engine.dedup),
    port(AVATAR_INDEX, (engine) => engine.avatars),
    port(QUOTA_STORE, (engine) => engine.quotas),
  ],
  exports: [CLUSTER_BUS, PRESENCE_REGISTRY, DEDUP_STORE, AVATAR_INDEX, QUOTA_STORE],
})
export class EngineModule {}
