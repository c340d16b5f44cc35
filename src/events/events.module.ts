import { Module } from '@nestjs/common';
import { CLUSTER_BUS, type ClusterBus } from '../engine/engine.ports';
import { EngineModule } from '../engine/engine.module';
import { MessagingModule } from '../messaging/messaging.module';
import { ObservabilityModule } from '../observability/observability.module';
import { EVENT_LINK } from './event-link';
import { EventPublisher } from './event-publisher';
import { EVENTS_OPTIONS, eventsOptionsProvider, type EventsOptions } from './events.options';
import { NatsLink } from './nats-link';

/**
 * Events for the application's backend (docs/protocol.md, "Events"): every fact of the
 * ActivityFeed published on NATS. Imported by AppModule only when EVENTS_NATS_URL is set; nothing
 * else in the gateway knows about it, and neither health nor readiness depends on NATS.
 */
@Module({
  imports: [MessagingModule, EngineModule, ObservabilityModule],
  providers: [
    eventsOptionsProvider,
    {
      provide: EVENT_LINK,
      inject: [EVENTS_OPTIONS, CLUSTER_BUS],
      useFactory: (options: EventsOptions, bus: ClusterBus) => new NatsLink(options.natsUrls, bus.nodeId),
    },
    EventPublisher,
  ],
})
export class EventsModule {}
