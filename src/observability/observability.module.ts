import { Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';
import { MetricsService, metricsOptionsProvider } from './metrics.service';

/** /metrics and the counters every module feeds (imported by the modules that count). */
@Module({
  controllers: [MetricsController],
  providers: [MetricsService, metricsOptionsProvider],
  exports: [MetricsService],
})
export class ObservabilityModule {}
