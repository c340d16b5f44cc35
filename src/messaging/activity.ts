import { Injectable, Logger } from '@nestjs/common';
import type { DeliveryStatus, UserProfile } from '../protocol/protocol';

/**
 * What happened, for the application's backend (docs/protocol.md, "Events"): one fact per thing
 * that happened, reported once per deployment, by the node where it happened.
 */
export type Activity =
  | { kind: 'chat'; message: string; sender: string; sendTime: string }
  | {
      kind: 'dialog';
      messageId: string;
      sender: string;
      receiver: string;
      /** The clientData exactly as forwarded (JSON text). */
      clientDataJson: string;
      sendTime: string;
      status: DeliveryStatus;
    }
  | { kind: 'connect'; userId: string }
  | { kind: 'disconnect'; userId: string; code: number }
  | { kind: 'profile'; userId: string; changed: Partial<UserProfile> };

export type ActivityKind = Activity['kind'];

/**
 * The in-process feed of facts: the session core and the features report to it, modules that
 * care (events on NATS, say) listen. Reporting is synchronous and costs a branch when nobody
 * listens; a listener that throws is logged and never reaches the reporter.
 */
@Injectable()
export class ActivityFeed {
  private readonly logger = new Logger(ActivityFeed.name);
  private listeners: ((activity: Activity) => void)[] = [];

  /** Someone listens: reporters may skip building a fact when nobody does. */
  get active(): boolean {
    return this.listeners.length > 0;
  }

  listen(listener: (activity: Activity) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  report(activity: Activity): void {
    for (const listener of this.listeners) {
      try {
        listener(activity);
      } catch (err) {
        this.logger.error({ kind: activity.kind, err: err instanceof Error ? err.stack : String(err) }, 'activity listener failed');
      }
    }
  }
}
