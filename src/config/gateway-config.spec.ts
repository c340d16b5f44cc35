import { ConfigError, loadConfig, type GatewayConfig } from './gateway-config';

/** The message of the ConfigError thrown by loadConfig(env); fails the test when none is thrown. */
function configErrorOf(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

describe('loadConfig', () => {
  describe('defaults (docs/protocol.md, Configuration)', () => {
    let config: GatewayConfig;
    beforeAll(() => {
      config = loadConfig({});
    });

    it.each<[keyof GatewayConfig, unknown]>([
      ['port', 8080],
      ['wsPath', '/ws'],
      ['publicUrl', 'http://localhost:8080'],
      ['authTimeoutMs', 3000],
      ['authDeadlineMs', 10_000],
      ['authCacheTtlMs', 30_000],
      ['authBreakerThreshold', 5],
      ['authBreakerCooldownMs', 5000],
      ['allowQueryToken', false],
      ['chatMaxLength', 4096],
      ['dialogMaxBytes', 16_384],
      ['dedupWindowMs', 600_000],
      ['deliveryTimeoutMs', 5000],
      ['remoteRoutesMax', 100_000],
      ['metricsEventLoopResolutionMs', 100],
      ['apiKeyFailuresPerMinute', 10],
      ['avatarMaxBytes', 1_048_576],
      ['avatarDir', './data/avatars'],
      // ceil(1048576 / 3) * 4 + 65536 = 349526 * 4 + 65536
      ['maxFrameBytes', 1_463_640],
      ['heartbeatIntervalMs', 25_000],
      ['rateLimitPerSec', 50],
      ['rateLimitBurst', 100],
      ['sendBufferMaxBytes', 1_048_576],
      ['broadcastBatching', true],
      ['maxConnections', 10_000],
      ['presenceTtlMs', 15_000],
      ['shutdownDrainMs', 10_000],
      ['duplicateProbeMs', 2000],
      ['authTokenMaxBytes', 4096],
      ['authInvalidCacheMs', 3000],
      ['authMaxInFlight', 64],
      ['preAuthMaxFrameBytes', 16_384],
      ['maxMessageFrameBytes', 65_536],
      ['maxJsonDepth', 32],
      ['inboundQueueMaxBytes', 4_194_304],
      ['inboundBytesPerSec', 262_144],
      ['avatarMaxPixels', 16_777_216],
      ['avatarConcurrency', 2],
      ['avatarSavesPerMinute', 6],
      ['headersTimeoutMs', 5000],
      ['authRecheckIntervalMs', 0],
      ['apiPort', 8082],
      ['apiHost', '127.0.0.1'],
      ['eventsSubjectPrefix', 'mpgp.events'],
      ['eventsJetStream', false],
      ['eventsBufferMax', 10_000],
      ['redisSentinelName', 'mymaster'],
    ])('%s defaults to %p', (key, expected) => {
      expect(config[key]).toStrictEqual(expected);
    });

    it('has no auth server, no origin list and no Redis, and is not production', () => {
      expect(config.authServerUrl).toBeUndefined();
      expect(config.allowedOrigins).toBeUndefined();
      expect(config.redisUrl).toBeUndefined();
      expect(config.production).toBe(false);
    });
  });

  describe('listen address', () => {
    it('is 127.0.0.1 with the demo users (no AUTH_SERVER_URL) unless HOST is set', () => {
      expect(loadConfig({})).toMatchObject({ host: '127.0.0.1', hostExplicit: false });
      expect(loadConfig({ HOST: '' })).toMatchObject({ host: '127.0.0.1', hostExplicit: false });
      expect(loadConfig({ HOST: '0.0.0.0' })).toMatchObject({ host: '0.0.0.0', hostExplicit: true });
    });

    it('is 0.0.0.0 with an authorization server', () => {
      expect(loadConfig({ AUTH_SERVER_URL: 'http://auth:8081/' })).toMatchObject({ host: '0.0.0.0', hostExplicit: false });
    });
  });

  describe('Server API and events', () => {
    it('are off by default', () => {
      expect(loadConfig({})).toMatchObject({ apiKeys: undefined, eventsNatsUrls: undefined });
    });

    it('read comma-separated keys and NATS servers, trimmed', () => {
      expect(loadConfig({ API_KEYS: ' key-0123456789abcdef , key-fedcba9876543210 ', EVENTS_NATS_URL: 'nats://a:4222, b:4223' })).toMatchObject({
        apiKeys: ['key-0123456789abcdef', 'key-fedcba9876543210'],
        eventsNatsUrls: ['nats://a:4222', 'b:4223'],
      });
    });

    it('refuse a short API key without printing it, and a bad NATS URL or subject prefix', () => {
      expect(() => loadConfig({ API_KEYS: 'tiny-secret' })).toThrow(/API_KEYS: key #1 is shorter than 16 characters/);
      expect(() => loadConfig({ API_KEYS: 'tiny-secret' })).not.toThrow(/tiny-secret/);
      expect(() => loadConfig({ EVENTS_NATS_URL: 'http://x' })).toThrow(/EVENTS_NATS_URL/);
      expect(() => loadConfig({ EVENTS_SUBJECT_PREFIX: 'a.>' })).toThrow(/EVENTS_SUBJECT_PREFIX/);
    });
  });

  describe('Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME)', () => {
    it('is off by default; the master group name defaults to mymaster', () => {
      expect(loadConfig({})).toMatchObject({ redisSentinels: undefined, redisSentinelName: 'mymaster', redisPassword: undefined, redisSentinelPassword: undefined });
      expect(loadConfig({ REDIS_SENTINELS: ' ' }).redisSentinels).toBeUndefined();
    });

    it('reads host:port entries, trimmed, the port defaulting to 26379, IPv6 in brackets', () => {
      expect(loadConfig({ REDIS_SENTINELS: ' s1:26380 , 10.0.0.2,[::1]:5000,redis-sentinel.internal:1 ' }).redisSentinels).toEqual([
        { host: 's1', port: 26380 },
        { host: '10.0.0.2', port: 26379 },
        { host: '::1', port: 5000 },
        { host: 'redis-sentinel.internal', port: 1 },
      ]);
    });

    it('is used instead of REDIS_URL (which is then ignored)', () => {
      const config = loadConfig({ REDIS_URL: 'redis://one:6379', REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'chat-primary' });
      expect(config).toMatchObject({ redisUrl: undefined, redisSentinels: [{ host: 's1', port: 26379 }], redisSentinelName: 'chat-primary' });
      expect(loadConfig({ REDIS_URL: 'redis://one:6379' })).toMatchObject({ redisUrl: 'redis://one:6379', redisSentinels: undefined });
    });

    it('takes the passwords of the data nodes and of the sentinels', () => {
      expect(loadConfig({ REDIS_SENTINELS: 's1', REDIS_PASSWORD: 'p a:s,s', REDIS_SENTINEL_PASSWORD: 'sentinel-secret' })).toMatchObject({
        redisPassword: 'p a:s,s',
        redisSentinelPassword: 'sentinel-secret',
      });
    });

    it.each([
      ['a port out of range', 's1:70000'],
      ['a port 0', 's1:0'],
      ['no host', ':26379'],
      ['a URL', 'redis://s1:26379'],
      ['a space inside', 's1 s2:26379'],
      ['an unbracketed IPv6 literal', '::1:26379'],
      ['only commas', ' , ,'],
      ['a duplicate', 's1:26379,S1:26379'],
      ['a duplicate by default port', 's1,s1:26379'],
    ])('refuses %s, naming REDIS_SENTINELS', (_case, value) => {
      expect(configErrorOf({ REDIS_SENTINELS: value })).toContain('REDIS_SENTINELS');
    });

    it('refuses a master group name with spaces or other characters', () => {
      expect(configErrorOf({ REDIS_SENTINEL_NAME: 'my master' })).toContain('REDIS_SENTINEL_NAME');
      expect(configErrorOf({ REDIS_SENTINEL_NAME: 'a/b' })).toContain('REDIS_SENTINEL_NAME');
    });

    it('refuses a password without REDIS_SENTINELS, without printing it', () => {
      for (const key of ['REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD']) {
        const message = configErrorOf({ REDIS_URL: 'redis://one:6379', [key]: 'hunter2-secret' });
        expect(message).toContain(key);
        expect(message).toContain('REDIS_SENTINELS');
        expect(message).not.toContain('hunter2-secret');
      }
    });
  });

  it('turns node links on with NODE_LINK_HOST only, with safe defaults', () => {
    expect(loadConfig({ REDIS_URL: 'redis://one:6379' }).nodeLinks).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'redis://one:6379', NODE_LINK_HOST: '' }).nodeLinks).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'redis://one:6379', NODE_LINK_HOST: 'gateway1' }).nodeLinks).toEqual({
      host: 'gateway1',
      port: 0,
      maxPeers: 256,
      maxBufferedBytes: 16 * 1024 * 1024,
      handshakeTimeoutMs: 2000,
    });
    expect(loadConfig({ NODE_LINK_HOST: '10.0.0.5', NODE_LINK_PORT: '8083' }).nodeLinks).toMatchObject({ host: '10.0.0.5', port: 8083 });
  });

  it('never lets a per-type frame limit exceed MAX_FRAME_BYTES', () => {
    const config = loadConfig({ MAX_FRAME_BYTES: '4096' });
    expect(config.maxMessageFrameBytes).toBe(4096);
    expect(config.preAuthMaxFrameBytes).toBe(4096);
  });

  it('derives PUBLIC_URL from PORT when PUBLIC_URL is not set', () => {
    expect(loadConfig({ PORT: '9001' }).publicUrl).toBe('http://localhost:9001');
  });

  it('keeps an explicit PUBLIC_URL (without a trailing slash) whatever the PORT', () => {
    const config = loadConfig({ PORT: '9001', PUBLIC_URL: 'https://chat.example.com/' });
    expect(config.port).toBe(9001);
    expect(config.publicUrl).toBe('https://chat.example.com');
  });

  it.each([
    ['3000', 1000 * 4 + 65_536],
    ['1000', 334 * 4 + 65_536],
    ['1', 1 * 4 + 65_536],
  ])('recomputes MAX_FRAME_BYTES from AVATAR_MAX_BYTES=%s', (avatarMaxBytes, expected) => {
    const config = loadConfig({ AVATAR_MAX_BYTES: avatarMaxBytes });
    expect(config.avatarMaxBytes).toBe(Number(avatarMaxBytes));
    expect(config.maxFrameBytes).toBe(expected);
  });

  it('takes an explicit MAX_FRAME_BYTES over the computed one', () => {
    expect(loadConfig({ AVATAR_MAX_BYTES: '3000', MAX_FRAME_BYTES: '2048' }).maxFrameBytes).toBe(2048);
  });

  it('parses numbers and booleans from their string form', () => {
    const config = loadConfig({ PORT: '1234', ALLOW_QUERY_TOKEN: 'true', CHAT_MAX_LENGTH: '10', DEDUP_WINDOW_MS: '0' });
    expect(config.port).toBe(1234);
    expect(config.allowQueryToken).toBe(true);
    expect(config.chatMaxLength).toBe(10);
    expect(config.dedupWindowMs).toBe(0);
    expect(loadConfig({ BROADCAST_BATCHING: 'false' }).broadcastBatching).toBe(false);
  });

  describe('bad values throw a ConfigError naming the variable', () => {
    it.each<[string, NodeJS.ProcessEnv, string]>([
      ['PORT not a number', { PORT: 'abc' }, 'PORT'],
      ['PORT out of range', { PORT: '70000' }, 'PORT'],
      ['WS_PATH not absolute', { WS_PATH: 'ws' }, 'WS_PATH'],
      ['AUTH_SERVER_URL not a URL', { AUTH_SERVER_URL: 'notaurl' }, 'AUTH_SERVER_URL'],
      ['ALLOW_QUERY_TOKEN not a boolean', { ALLOW_QUERY_TOKEN: 'maybe' }, 'ALLOW_QUERY_TOKEN'],
      ['ALLOWED_ORIGINS with a trailing slash', { ALLOWED_ORIGINS: 'https://a.example/' }, 'ALLOWED_ORIGINS'],
      ['ALLOWED_ORIGINS with a path', { ALLOWED_ORIGINS: 'https://a.example, https://b.example/app' }, 'ALLOWED_ORIGINS'],
      ['REDIS_URL not redis://', { REDIS_URL: 'http://x' }, 'REDIS_URL'],
      ['CHAT_MAX_LENGTH zero', { CHAT_MAX_LENGTH: '0' }, 'CHAT_MAX_LENGTH'],
      ['REMOTE_ROUTES_MAX negative', { REMOTE_ROUTES_MAX: '-1' }, 'REMOTE_ROUTES_MAX'],
      ['NODE_LINK_HOST with a space', { NODE_LINK_HOST: 'gateway 1' }, 'NODE_LINK_HOST'],
      ['NODE_LINK_PORT out of range', { NODE_LINK_PORT: '65536' }, 'NODE_LINK_PORT'],
      ['NODE_LINK_MAX_PEERS zero', { NODE_LINK_MAX_PEERS: '0' }, 'NODE_LINK_MAX_PEERS'],
      ['NODE_LINK_MAX_BUFFERED_BYTES under 64 KiB', { NODE_LINK_MAX_BUFFERED_BYTES: '1000' }, 'NODE_LINK_MAX_BUFFERED_BYTES'],
      ['METRICS_EVENT_LOOP_RESOLUTION_MS zero', { METRICS_EVENT_LOOP_RESOLUTION_MS: '0' }, 'METRICS_EVENT_LOOP_RESOLUTION_MS'],
      ['API_KEY_FAILURES_PER_MINUTE zero', { API_KEY_FAILURES_PER_MINUTE: '0' }, 'API_KEY_FAILURES_PER_MINUTE'],
      ['BROADCAST_BATCHING not a boolean', { BROADCAST_BATCHING: 'sometimes' }, 'BROADCAST_BATCHING'],
      ['AUTH_INVALID_CACHE_MS over "a few seconds at most" (10 s)', { AUTH_INVALID_CACHE_MS: '10001' }, 'AUTH_INVALID_CACHE_MS'],
    ])('%s', (_case, env, variable) => {
      const message = configErrorOf(env);
      expect(message).toContain(variable);
    });

    it('names only the bad variables', () => {
      const message = configErrorOf({ PORT: 'abc', CHAT_MAX_LENGTH: '0', WS_PATH: '/ok' });
      expect(message).toContain('PORT');
      expect(message).toContain('CHAT_MAX_LENGTH');
      expect(message).not.toContain('WS_PATH');
      expect(message).not.toContain('REDIS_URL');
    });
  });

  it('refuses NODE_ENV=production without AUTH_SERVER_URL, saying why', () => {
    const message = configErrorOf({ NODE_ENV: 'production' });
    expect(message).toContain('AUTH_SERVER_URL');
    expect(message).toMatch(/production/);
    expect(message).toMatch(/demo/);
  });

  it('accepts NODE_ENV=production with an AUTH_SERVER_URL', () => {
    const config = loadConfig({ NODE_ENV: 'production', AUTH_SERVER_URL: 'http://auth:9000/check' });
    expect(config.production).toBe(true);
    expect(config.authServerUrl).toBe('http://auth:9000/check');
  });

  it('parses ALLOWED_ORIGINS into a set of trimmed origins', () => {
    const config = loadConfig({ ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080 ,,https://a.example' });
    expect(config.allowedOrigins).toBeInstanceOf(Set);
    expect([...(config.allowedOrigins ?? [])].sort()).toEqual(['http://b.example:8080', 'https://a.example']);
    expect(config.allowedOrigins?.has('https://a.example')).toBe(true);
    expect(config.allowedOrigins?.has('https://a.example/')).toBe(false);
  });
});
