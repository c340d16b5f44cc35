import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  validateSync,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
const toBool = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  return value;
};
const emptyToUndefined = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

/**
 * The environment, validated at boot. Names and defaults are those of the protocol's
 * Configuration table; a bad value stops the start with a message naming the variable.
 */
export class EnvironmentDto {
  @IsOptional() @IsIn(['development', 'production', 'test'])
  NODE_ENV?: string;

  @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT = 8080;

  @Transform(emptyToUndefined) @IsOptional() @IsString()
  HOST?: string;

  @IsString() @Matches(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, { message: 'WS_PATH must be an absolute URL path such as /ws' })
  WS_PATH = '/ws';

  @Transform(emptyToUndefined) @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] }, { message: 'PUBLIC_URL must be an absolute http(s) URL' })
  PUBLIC_URL?: string;

  @Transform(emptyToUndefined) @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] }, { message: 'AUTH_SERVER_URL must be an absolute http(s) URL' })
  AUTH_SERVER_URL?: string;

  @Transform(toInt) @IsInt() @Min(1) @Max(600_000)
  AUTH_TIMEOUT_MS = 3000;

  @Transform(toInt) @IsInt() @Min(1) @Max(3_600_000)
  AUTH_DEADLINE_MS = 10_000;

  @Transform(toInt) @IsInt() @Min(0) @Max(86_400_000)
  AUTH_CACHE_TTL_MS = 30_000;

  @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  AUTH_BREAKER_THRESHOLD = 5;

  @Transform(toInt) @IsInt() @Min(1) @Max(3_600_000)
  AUTH_BREAKER_COOLDOWN_MS = 5000;

  @Transform(toBool) @IsBoolean()
  ALLOW_QUERY_TOKEN = false;

  @Transform(emptyToUndefined) @IsOptional() @IsString()
  ALLOWED_ORIGINS?: string;

  @Transform(toInt) @IsInt() @Min(1) @Max(10_000_000)
  CHAT_MAX_LENGTH = 4096;

  @Transform(toInt) @IsInt() @Min(2) @Max(64 * 1024 * 1024)
  DIALOG_MAX_BYTES = 16384;

  @Transform(toInt) @IsInt() @Min(0) @Max(7 * 86_400_000)
  DEDUP_WINDOW_MS = 600_000;

  @Transform(toInt) @IsInt() @Min(1) @Max(600_000)
  DELIVERY_TIMEOUT_MS = 5000;

  @Transform(toInt) @IsInt() @Min(0) @Max(10_000_000)
  REMOTE_ROUTES_MAX = 100_000;

  @Transform(toInt) @IsInt() @Min(1) @Max(60_000)
  METRICS_EVENT_LOOP_RESOLUTION_MS = 100;

  @Transform(toInt) @IsInt() @Min(1) @Max(64 * 1024 * 1024)
  AVATAR_MAX_BYTES = 1_048_576;

  @IsString()
  AVATAR_DIR = './data/avatars';

  @Transform(toInt) @IsOptional() @IsInt() @Min(1024) @Max(256 * 1024 * 1024)
  MAX_FRAME_BYTES?: number;

  @Transform(toInt) @IsInt() @Min(100) @Max(3_600_000)
  HEARTBEAT_INTERVAL_MS = 25_000;

  @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  RATE_LIMIT_PER_SEC = 50;

  @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  RATE_LIMIT_BURST = 100;

  @Transform(toInt) @IsInt() @Min(1024) @Max(1024 * 1024 * 1024)
  SEND_BUFFER_MAX_BYTES = 1_048_576;

  /** Coalesce the broadcast frames a socket gets within one event-loop turn into one write. */
  @Transform(toBool) @IsBoolean()
  BROADCAST_BATCHING = true;

  @Transform(toInt) @IsInt() @Min(1) @Max(10_000_000)
  MAX_CONNECTIONS = 10_000;

  @Transform(emptyToUndefined) @IsOptional()
  @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  /** Redis Sentinel: comma-separated host:port of the sentinels; used instead of REDIS_URL. */
  @Transform(emptyToUndefined) @IsOptional() @IsString()
  REDIS_SENTINELS?: string;

  /** The master group name the sentinels monitor. */
  @IsString() @Matches(/^[A-Za-z0-9._-]{1,128}$/, { message: 'REDIS_SENTINEL_NAME must be a master group name: letters, digits, ".", "_" or "-"' })
  REDIS_SENTINEL_NAME = 'mymaster';

  /** Password of the Redis primary and replicas in Sentinel mode (REDIS_URL carries its own). */
  @Transform(emptyToUndefined) @IsOptional() @IsString()
  REDIS_PASSWORD?: string;

  /** Password of the sentinels themselves (their requirepass), when they have one. */
  @Transform(emptyToUndefined) @IsOptional() @IsString()
  REDIS_SENTINEL_PASSWORD?: string;

  @Transform(toInt) @IsInt() @Min(1000) @Max(3_600_000)
  PRESENCE_TTL_MS = 15_000;

  /**
   * Cluster mode: the host (name or address) this node listens on for direct links from the other
   * nodes, and that they connect to; unset, deliveries between nodes go through Redis only.
   */
  @Transform(emptyToUndefined) @IsOptional()
  @Matches(/^[A-Za-z0-9.:_-]{1,253}$/, { message: 'NODE_LINK_HOST must be a host name or an IP address' })
  NODE_LINK_HOST?: string;

  /** The port of the node links; 0 takes a free one (the bound port is what the other nodes are told). */
  @Transform(toInt) @IsInt() @Min(0) @Max(65_535)
  NODE_LINK_PORT = 0;

  /** Links accepted from other nodes at once (each node opens one to each other node). */
  @Transform(toInt) @IsInt() @Min(1) @Max(100_000)
  NODE_LINK_MAX_PEERS = 256;

  /** Bytes queued on one link before deliveries on it are refused (a peer that does not read). */
  @Transform(toInt) @IsInt() @Min(65_536) @Max(1024 * 1024 * 1024)
  NODE_LINK_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

  /** Time for a link to connect and be accepted, and for an accepted one to send its hello. */
  @Transform(toInt) @IsInt() @Min(100) @Max(60_000)
  NODE_LINK_HANDSHAKE_TIMEOUT_MS = 2000;

  @Transform(toInt) @IsInt() @Min(0) @Max(600_000)
  SHUTDOWN_DRAIN_MS = 10_000;

  @IsOptional() @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL?: string;

  @Transform(toInt) @IsInt() @Min(1) @Max(60_000)
  DUPLICATE_PROBE_MS = 2000;

  @Transform(toInt) @IsInt() @Min(16) @Max(1024 * 1024)
  AUTH_TOKEN_MAX_BYTES = 4096;

  /** How long an "invalid token" answer (error "2") may be reused for the same token (PROTOCOL.md: a few seconds at most). */
  @Transform(toInt) @IsInt() @Min(0) @Max(10_000)
  AUTH_INVALID_CACHE_MS = 3000;

  /** CHECK_TOKEN requests in flight at once; more wait their turn (within AUTH_TIMEOUT_MS). */
  @Transform(toInt) @IsInt() @Min(1) @Max(100_000)
  AUTH_MAX_IN_FLIGHT = 64;

  @Transform(toInt) @IsInt() @Min(256) @Max(256 * 1024 * 1024)
  PRE_AUTH_MAX_FRAME_BYTES = 16_384;

  @Transform(toInt) @IsInt() @Min(1024) @Max(256 * 1024 * 1024)
  MAX_MESSAGE_FRAME_BYTES = 65_536;

  @Transform(toInt) @IsInt() @Min(2) @Max(10_000)
  MAX_JSON_DEPTH = 32;

  @Transform(toInt) @IsInt() @Min(1024) @Max(1024 * 1024 * 1024)
  INBOUND_QUEUE_MAX_BYTES = 4_194_304;

  /**
   * Bytes per second one logged-in connection may send, sustained (bursts up to MAX_FRAME_BYTES
   * more); beyond it, its socket is not read for a while (TCP backpressure, nothing refused).
   */
  @Transform(toInt) @IsInt() @Min(1024) @Max(1024 * 1024 * 1024)
  INBOUND_BYTES_PER_SEC = 262_144;

  @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000_000)
  AVATAR_MAX_PIXELS = 16_777_216;

  @Transform(toInt) @IsInt() @Min(1) @Max(64)
  AVATAR_CONCURRENCY = 2;

  @Transform(toInt) @IsInt() @Min(1) @Max(100_000)
  AVATAR_SAVES_PER_MINUTE = 6;

  /** An HTTP request (an upgrade included) whose headers have not all arrived by then is dropped. */
  @Transform(toInt) @IsInt() @Min(100) @Max(600_000)
  HEADERS_TIMEOUT_MS = 5000;

  /** Re-check every live connection's token this often (0 = never), spread over the interval. */
  @Transform(toInt) @IsInt() @Min(0) @Max(7 * 86_400_000)
  AUTH_RECHECK_INTERVAL_MS = 0;

  /** Comma-separated keys of the Server API (unset: the API is off). */
  @Transform(emptyToUndefined) @IsOptional() @IsString()
  API_KEYS?: string;

  @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  API_PORT = 8082;

  @IsString()
  API_HOST = '127.0.0.1';

  @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000)
  API_KEY_FAILURES_PER_MINUTE = 10;

  /** NATS server(s) for events, comma-separated (unset: no events). */
  @Transform(emptyToUndefined) @IsOptional() @IsString()
  EVENTS_NATS_URL?: string;

  @IsString() @Matches(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { message: 'EVENTS_SUBJECT_PREFIX must be NATS subject tokens separated by dots, without wildcards' })
  EVENTS_SUBJECT_PREFIX = 'mpgp.events';

  @Transform(toBool) @IsBoolean()
  EVENTS_JETSTREAM = false;

  @Transform(toInt) @IsInt() @Min(1) @Max(10_000_000)
  EVENTS_BUFFER_MAX = 10_000;

  /** Serve the demo chat page at GET / (src/web). */
  @Transform(toBool) @IsBoolean()
  DEMO_PAGE = true;
}

/** The validated, typed configuration the rest of the gateway reads. */
export interface GatewayConfig {
  production: boolean;
  port: number;
  /** Listen address: HOST, else 127.0.0.1 with the demo users (no AUTH_SERVER_URL), else 0.0.0.0. */
  host: string;
  /** HOST was set explicitly. */
  hostExplicit: boolean;
  wsPath: string;
  publicUrl: string;
  authServerUrl?: string;
  authTimeoutMs: number;
  authDeadlineMs: number;
  authCacheTtlMs: number;
  authBreakerThreshold: number;
  authBreakerCooldownMs: number;
  allowQueryToken: boolean;
  allowedOrigins?: ReadonlySet<string>;
  chatMaxLength: number;
  dialogMaxBytes: number;
  dedupWindowMs: number;
  deliveryTimeoutMs: number;
  /** REMOTE_ROUTES_MAX: users on other nodes whose node is remembered (RemoteRoutes). */
  remoteRoutesMax: number;
  /** METRICS_EVENT_LOOP_RESOLUTION_MS: the sampling period of the event-loop delay metrics. */
  metricsEventLoopResolutionMs: number;
  avatarMaxBytes: number;
  avatarDir: string;
  maxFrameBytes: number;
  heartbeatIntervalMs: number;
  rateLimitPerSec: number;
  rateLimitBurst: number;
  sendBufferMaxBytes: number;
  broadcastBatching: boolean;
  maxConnections: number;
  /** Cluster mode on one standalone Redis; undefined in Sentinel mode (REDIS_SENTINELS wins). */
  redisUrl?: string;
  /** Cluster mode on Redis Sentinel: the sentinels asked for the current primary. */
  redisSentinels?: readonly RedisAddress[];
  /** The master group name the sentinels monitor (REDIS_SENTINEL_NAME). */
  redisSentinelName: string;
  /** Password of the primary and replicas in Sentinel mode. */
  redisPassword?: string;
  /** Password of the sentinels. */
  redisSentinelPassword?: string;
  presenceTtlMs: number;
  /** Direct links between nodes (NodeLinks); undefined when NODE_LINK_HOST is unset. */
  nodeLinks?: { host: string; port: number; maxPeers: number; maxBufferedBytes: number; handshakeTimeoutMs: number };
  shutdownDrainMs: number;
  logLevel: string;
  demoPage: boolean;
  duplicateProbeMs: number;
  authTokenMaxBytes: number;
  authInvalidCacheMs: number;
  authMaxInFlight: number;
  preAuthMaxFrameBytes: number;
  /** The largest frame of any type but SAVE_AVATAR (never above maxFrameBytes). */
  maxMessageFrameBytes: number;
  maxJsonDepth: number;
  inboundQueueMaxBytes: number;
  inboundBytesPerSec: number;
  avatarMaxPixels: number;
  avatarConcurrency: number;
  avatarSavesPerMinute: number;
  headersTimeoutMs: number;
  authRecheckIntervalMs: number;
  /** The Server API's keys; undefined when the API is off. */
  apiKeys?: readonly string[];
  apiPort: number;
  /** API_KEY_FAILURES_PER_MINUTE: wrong keys an address may present (a burst of as many, then that rate) before it gets 429. */
  apiKeyFailuresPerMinute: number;
  apiHost: string;
  /** NATS servers for events; undefined when events are off. */
  eventsNatsUrls?: readonly string[];
  eventsSubjectPrefix: string;
  eventsJetStream: boolean;
  eventsBufferMax: number;
}

export class ConfigError extends Error {}

export interface RedisAddress {
  host: string;
  port: number;
}

/** The port of a sentinel given without one. */
export const DEFAULT_SENTINEL_PORT = 26379;

/**
 * Parses REDIS_SENTINELS: `host[:port]` entries separated by commas (`[ipv6]:port` for IPv6
 * literals; the port defaults to 26379). Throws a ConfigError naming the bad entry.
 */
export function parseSentinels(value: string): RedisAddress[] {
  const out: RedisAddress[] = [];
  const seen = new Set<string>();
  const entries = value.split(',').map((e) => e.trim()).filter((e) => e.length > 0);
  if (entries.length === 0) throw new ConfigError('invalid configuration:\n  REDIS_SENTINELS: no sentinel (expected host:port,host:port,...)');
  for (const entry of entries) {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(entry);
    const port = match?.[3] === undefined ? DEFAULT_SENTINEL_PORT : Number(match[3]);
    if (!match || port < 1 || port > 65535) {
      throw new ConfigError(`invalid configuration:\n  REDIS_SENTINELS: "${entry}" is not host:port (a port from 1 to 65535; [address]:port for IPv6)`);
    }
    const host = match[1] ?? match[2];
    const key = `${host.toLowerCase()}:${port}`;
    if (seen.has(key)) throw new ConfigError(`invalid configuration:\n  REDIS_SENTINELS: "${entry}" is listed twice`);
    seen.add(key);
    out.push({ host, port });
  }
  return out;
}

/** Validates an environment (process.env by default) into a GatewayConfig, or throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const known = Object.keys(new EnvironmentDto());
  const input: Record<string, string> = {};
  for (const key of [...known, 'NODE_ENV', 'HOST', 'PUBLIC_URL', 'AUTH_SERVER_URL', 'ALLOWED_ORIGINS', 'MAX_FRAME_BYTES', 'REDIS_URL', 'REDIS_SENTINELS', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'LOG_LEVEL', 'API_KEYS', 'EVENTS_NATS_URL']) {
    const value = env[key];
    if (value !== undefined) input[key] = value;
  }
  const dto = plainToInstance(EnvironmentDto, input);
  const errors = validateSync(dto, { whitelist: false, forbidUnknownValues: true });
  if (errors.length > 0) {
    // A secret's value is never printed.
    const shown = (key: string) => (/PASSWORD|KEYS/.test(key) ? '(not shown)' : JSON.stringify(input[key] ?? null));
    const lines = errors.map((e) => `${e.property}=${shown(e.property)}: ${Object.values(e.constraints ?? {}).join('; ')}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const production = dto.NODE_ENV === 'production';
  if (production && !dto.AUTH_SERVER_URL) {
    throw new ConfigError(
      'AUTH_SERVER_URL is required when NODE_ENV=production: the built-in demo users are for development only',
    );
  }
  const origins = dto.ALLOWED_ORIGINS?.split(',').map((o) => o.trim()).filter((o) => o.length > 0);
  if (origins) {
    for (const origin of origins) {
      if (!/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(origin)) {
        throw new ConfigError(`invalid configuration:\n  ALLOWED_ORIGINS: "${origin}" is not scheme://host[:port] (no path, no trailing slash)`);
      }
    }
  }
  const maxFrameBytes = dto.MAX_FRAME_BYTES ?? Math.ceil(dto.AVATAR_MAX_BYTES / 3) * 4 + 65_536;
  const list = (value: string | undefined) => value?.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
  const apiKeys = list(dto.API_KEYS);
  for (const key of apiKeys ?? []) {
    // Never print a key: say which one by its position.
    if (key.length < 16) throw new ConfigError(`invalid configuration:\n  API_KEYS: key #${apiKeys!.indexOf(key) + 1} is shorter than 16 characters`);
  }
  const natsUrls = list(dto.EVENTS_NATS_URL);
  for (const url of natsUrls ?? []) {
    if (!/^(nats|tls|wss?):\/\/[^\s/]+(:\d+)?\/?$/i.test(url) && !/^[^\s/:]+:\d+$/.test(url)) {
      throw new ConfigError(`invalid configuration:\n  EVENTS_NATS_URL: "${url}" is not nats://host:port (or host:port)`);
    }
  }
  const sentinels = dto.REDIS_SENTINELS === undefined ? undefined : parseSentinels(dto.REDIS_SENTINELS);
  if (!sentinels && (dto.REDIS_PASSWORD !== undefined || dto.REDIS_SENTINEL_PASSWORD !== undefined)) {
    // Never print a password: name the variable only.
    const which = dto.REDIS_PASSWORD !== undefined ? 'REDIS_PASSWORD' : 'REDIS_SENTINEL_PASSWORD';
    throw new ConfigError(`invalid configuration:\n  ${which} is only read with REDIS_SENTINELS (with REDIS_URL, put the password in the URL: redis://:password@host:6379)`);
  }
  return {
    production,
    port: dto.PORT,
    // The demo users' tokens are public: without an authorization server, only this machine may log in.
    host: dto.HOST ?? (dto.AUTH_SERVER_URL ? '0.0.0.0' : '127.0.0.1'),
    hostExplicit: dto.HOST !== undefined,
    wsPath: dto.WS_PATH,
    publicUrl: (dto.PUBLIC_URL ?? `http://localhost:${dto.PORT}`).replace(/\/+$/, ''),
    authServerUrl: dto.AUTH_SERVER_URL,
    authTimeoutMs: dto.AUTH_TIMEOUT_MS,
    authDeadlineMs: dto.AUTH_DEADLINE_MS,
    authCacheTtlMs: dto.AUTH_CACHE_TTL_MS,
    authBreakerThreshold: dto.AUTH_BREAKER_THRESHOLD,
    authBreakerCooldownMs: dto.AUTH_BREAKER_COOLDOWN_MS,
    allowQueryToken: dto.ALLOW_QUERY_TOKEN,
    allowedOrigins: origins && origins.length > 0 ? new Set(origins) : undefined,
    chatMaxLength: dto.CHAT_MAX_LENGTH,
    dialogMaxBytes: dto.DIALOG_MAX_BYTES,
    dedupWindowMs: dto.DEDUP_WINDOW_MS,
    deliveryTimeoutMs: dto.DELIVERY_TIMEOUT_MS,
    remoteRoutesMax: dto.REMOTE_ROUTES_MAX,
    metricsEventLoopResolutionMs: dto.METRICS_EVENT_LOOP_RESOLUTION_MS,
    avatarMaxBytes: dto.AVATAR_MAX_BYTES,
    avatarDir: dto.AVATAR_DIR,
    maxFrameBytes,
    heartbeatIntervalMs: dto.HEARTBEAT_INTERVAL_MS,
    rateLimitPerSec: dto.RATE_LIMIT_PER_SEC,
    rateLimitBurst: dto.RATE_LIMIT_BURST,
    sendBufferMaxBytes: dto.SEND_BUFFER_MAX_BYTES,
    broadcastBatching: dto.BROADCAST_BATCHING,
    maxConnections: dto.MAX_CONNECTIONS,
    redisUrl: sentinels ? undefined : dto.REDIS_URL,
    redisSentinels: sentinels,
    redisSentinelName: dto.REDIS_SENTINEL_NAME,
    redisPassword: dto.REDIS_PASSWORD,
    redisSentinelPassword: dto.REDIS_SENTINEL_PASSWORD,
    presenceTtlMs: dto.PRESENCE_TTL_MS,
    nodeLinks: dto.NODE_LINK_HOST
      ? {
          host: dto.NODE_LINK_HOST,
          port: dto.NODE_LINK_PORT,
          maxPeers: dto.NODE_LINK_MAX_PEERS,
          maxBufferedBytes: dto.NODE_LINK_MAX_BUFFERED_BYTES,
          handshakeTimeoutMs: dto.NODE_LINK_HANDSHAKE_TIMEOUT_MS,
        }
      : undefined,
    shutdownDrainMs: dto.SHUTDOWN_DRAIN_MS,
    logLevel: dto.LOG_LEVEL ?? (dto.NODE_ENV === 'test' ? 'warn' : 'info'),
    demoPage: dto.DEMO_PAGE,
    duplicateProbeMs: dto.DUPLICATE_PROBE_MS,
    authTokenMaxBytes: dto.AUTH_TOKEN_MAX_BYTES,
    authInvalidCacheMs: dto.AUTH_INVALID_CACHE_MS,
    authMaxInFlight: dto.AUTH_MAX_IN_FLIGHT,
    preAuthMaxFrameBytes: Math.min(dto.PRE_AUTH_MAX_FRAME_BYTES, maxFrameBytes),
    maxMessageFrameBytes: Math.min(dto.MAX_MESSAGE_FRAME_BYTES, maxFrameBytes),
    maxJsonDepth: dto.MAX_JSON_DEPTH,
    inboundQueueMaxBytes: dto.INBOUND_QUEUE_MAX_BYTES,
    inboundBytesPerSec: dto.INBOUND_BYTES_PER_SEC,
    avatarMaxPixels: dto.AVATAR_MAX_PIXELS,
    avatarConcurrency: dto.AVATAR_CONCURRENCY,
    avatarSavesPerMinute: dto.AVATAR_SAVES_PER_MINUTE,
    headersTimeoutMs: dto.HEADERS_TIMEOUT_MS,
    authRecheckIntervalMs: dto.AUTH_RECHECK_INTERVAL_MS,
    apiKeys: apiKeys && apiKeys.length > 0 ? apiKeys : undefined,
    apiPort: dto.API_PORT,
    apiKeyFailuresPerMinute: dto.API_KEY_FAILURES_PER_MINUTE,
    apiHost: dto.API_HOST,
    eventsNatsUrls: natsUrls && natsUrls.length > 0 ? natsUrls : undefined,
    eventsSubjectPrefix: dto.EVENTS_SUBJECT_PREFIX,
    eventsJetStream: dto.EVENTS_JETSTREAM,
    eventsBufferMax: dto.EVENTS_BUFFER_MAX,
  };
}

/** Injection token of the GatewayConfig. */
export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');
