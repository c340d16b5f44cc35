import { randomUUID } from 'node:crypto';
import { Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { GatewayConfig } from '../../config/gateway-config';
import { RedisAvatarIndex } from './redis-avatar-index';
import { RedisClusterBus } from './redis-cluster-bus';
import { RedisConnection, type RedisConnectionOptions } from './redis-connection';
import { RedisDedupStore } from './redis-dedup-store';
import { NodeLinks } from './node-links';
import { RedisPresenceRegistry } from './redis-presence-registry';
import { RedisQuotaStore } from './redis-quota-store';
import type { RedisSentinelOptions } from './sentinel-watch';

/** Bound on one Redis command: a hung Redis fails calls after this long. */
export const REDIS_COMMAND_TIMEOUT_MS = 2000;

export type RedisEngineConfig = Pick<
  GatewayConfig,
  'redisUrl' | 'redisSentinels' | 'redisSentinelName' | 'redisPassword' | 'redisSentinelPassword' | 'presenceTtlMs' | 'dedupWindowMs' | 'deliveryTimeoutMs' | 'avatarDir'
> &
  Partial<Pick<GatewayConfig, 'nodeLinks' | 'maxFrameBytes'>>;

/**
 * Which Redis a node uses: the primary of REDIS_SENTINEL_NAME through REDIS_SENTINELS when they
 * are set (a failover is then followed by itself), else the standalone REDIS_URL.
 */
export function redisTarget(config: Pick<RedisEngineConfig, 'redisUrl' | 'redisSentinels' | 'redisSentinelName' | 'redisPassword' | 'redisSentinelPassword'>): Pick<RedisConnectionOptions, 'url' | 'sentinel' | 'password'> {
  if (config.redisSentinels && config.redisSentinels.length > 0) {
    return {
      sentinel: { sentinels: config.redisSentinels, name: config.redisSentinelName, password: config.redisSentinelPassword },
      password: config.redisPassword,
    };
  }
  if (!config.redisUrl) throw new Error('RedisEngine needs REDIS_URL or REDIS_SENTINELS');
  return { url: config.redisUrl };
}

/**
 * The cluster engine of one node: its Redis connections and the ports built on them.
 * Nothing here waits for Redis at boot: the node starts, is not ready, and joins once Redis
 * answers. On shutdown (after the gateway has closed its connections: this is a global module,
 * so its hooks run last) the node leaves the registry and closes its connections.
 */
export class RedisEngine implements OnModuleInit, OnApplicationShutdown {
  readonly nodeId: string;
  readonly connection: RedisConnection;
  readonly bus: RedisClusterBus;
  readonly presence: RedisPresenceRegistry;
  readonly dedup: RedisDedupStore;
  readonly avatars: RedisAvatarIndex;
  readonly quotas: RedisQuotaStore;
  /** Direct links to the other nodes for deliveries, when NODE_LINK_HOST is set. */
  readonly links?: NodeLinks;
  private readonly sentinel?: RedisSentinelOptions;
  private readonly linkConfig?: { host: string; port: number };
  private started = false;
  private closing?: Promise<void>;

  constructor(config: RedisEngineConfig, nodeId = randomUUID()) {
    this.nodeId = nodeId;
    const target = redisTarget(config);
    this.sentinel = target.sentinel;
    this.connection = new RedisConnection({ ...target, commandTimeoutMs: REDIS_COMMAND_TIMEOUT_MS, name: nodeId.slice(0, 8) });
    if (config.nodeLinks) {
      this.linkConfig = config.nodeLinks;
      this.links = new NodeLinks(this.connection, nodeId, {
        ...config.nodeLinks,
        // A delivery carries one client frame (at most MAX_FRAME_BYTES) and a short header.
        maxFrameBytes: (config.maxFrameBytes ?? 1024 * 1024) + 4096,
      });
    }
    this.bus = new RedisClusterBus(this.connection, nodeId, this.links);
    this.presence = new RedisPresenceRegistry(this.connection, nodeId, { ttlMs: config.presenceTtlMs });
    this.dedup = new RedisDedupStore(this.connection, {
      windowMs: config.dedupWindowMs,
      // The longest attempt: a locate and a publish (each bounded by the command timeout) and the wait for the answer.
      pendingTtlMs: config.deliveryTimeoutMs + 2 * REDIS_COMMAND_TIMEOUT_MS + 1000,
    });
    this.avatars = new RedisAvatarIndex(this.connection, config.avatarDir);
    this.quotas = new RedisQuotaStore(this.connection);
  }

  /** Connects in the background and starts the heartbeat; idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.sentinel) {
      const { name, sentinels } = this.sentinel;
      new Logger('RedisEngine').log(`cluster mode on Redis Sentinel: master group ${name}, sentinels ${sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`);
    }
    this.connection.start();
    this.presence.start();
  }

  /** Starts the engine; with node links, the app does not start when their port cannot be bound. */
  async onModuleInit(): Promise<void> {
    if (this.links) {
      const { host, port } = this.linkConfig!;
      await this.links.start().catch((err: unknown) => {
        throw new Error(`node links cannot listen on ${host}:${port} (NODE_LINK_HOST, NODE_LINK_PORT): ${err instanceof Error ? err.message : String(err)}`);
      });
    }
    this.start();
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        await this.presence.close();
        await this.links?.close();
        this.bus.close();
        await this.connection.close();
      })();
    }
    return this.closing;
  }
}
