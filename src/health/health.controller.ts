import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthIndicatorResult } from '@nestjs/terminus';
import { CLUSTER_BUS, type ClusterBus } from '../engine/engine.ports';
import { DrainState } from '../lifecycle/drain-state';

/**
 * GET /health/live: 200 while the process is up. GET /health/ready: 200 when the node can serve
 * (not shutting down; in cluster mode the bus answers a round trip), 503 otherwise.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly drain: DrainState,
    @Inject(CLUSTER_BUS) private readonly bus: ClusterBus,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      async (): Promise<HealthIndicatorResult> => {
        if (this.drain.draining) throw new ServiceUnavailableException({ gateway: { status: 'down', reason: 'shutting down' } });
        return { gateway: { status: 'up' } };
      },
      async (): Promise<HealthIndicatorResult> => {
        const ok = await this.bus.isHealthy().catch(() => false);
        if (!ok) throw new ServiceUnavailableException({ bus: { status: 'down' } });
        return { bus: { status: 'up' } };
      },
    ]);
  }
}
