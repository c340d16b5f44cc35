import { Injectable } from '@nestjs/common';

/**
 * Whether this node is shutting down (SIGTERM): readiness answers 503 and new upgrades are refused
 * from then on. Set by main.ts, read by the gateway's admission and by health.
 */
@Injectable()
export class DrainState {
  private on = false;

  get draining(): boolean {
    return this.on;
  }

  start(): void {
    this.on = true;
  }
}
