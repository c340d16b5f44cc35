import { HttpAdapterHost } from '@nestjs/core';
import type { MetricsService } from '../observability/metrics.service';
import { strictMock } from '../../test/support/strict-mock';
import { ApiListener, isApiPath } from './api-listener';
import type { ApiOptions } from './api.options';

const OPTIONS: ApiOptions = {
  keys: ['k'.repeat(16)],
  port: 8082,
  host: '127.0.0.1',
  publicPort: 8080,
  headersTimeoutMs: 5000,
  bodyMaxBytes: 81_920,
  maxJsonDepth: 32,
  commandTimeoutMs: 5000,
  keyFailuresPerMinute: 10,
};

describe('isApiPath', () => {
  it.each(['/api', '/api/', '/api/v1/users', '/API/v1/users', '/Api', '/api?x=1', '/api/?x', '/%61pi/v1', '/%41PI/v1/users', '/api%2Fv1%2Fusers', '/api/%ZZ'])('%s: an API path', (url) => {
    expect(isApiPath(url)).toBe(true);
  });

  it.each(['/', '/ws', '/metrics', '/apis', '/api-docs', '/apiv1', '/x/api/v1/users', '//api/v1/users', '/%ZZapi', '/health/live?path=/api/v1', undefined])('%s: not an API path', (url) => {
    expect(isApiPath(url)).toBe(false);
  });
});

describe('ApiListener', () => {
  it('refuses to start on the public port', async () => {
    const listener = new ApiListener(strictMock<HttpAdapterHost>({}, 'adapterHost'), strictMock<MetricsService>({}, 'metrics'), { ...OPTIONS, port: 8080 });
    await expect(listener.onApplicationBootstrap()).rejects.toThrow('API_PORT (8080) must differ from PORT');
  });

  it('has no address before it listens, and closing it then is harmless', async () => {
    const listener = new ApiListener(strictMock<HttpAdapterHost>({}, 'adapterHost'), strictMock<MetricsService>({}, 'metrics'), OPTIONS);
    expect(listener.address()).toBeUndefined();
    await expect(listener.onModuleDestroy()).resolves.toBeUndefined();
  });
});
