import { randomUUID } from 'node:crypto';
import { Status, type DeliveryStatus } from '../../protocol/protocol';
import type { BroadcastEvent, ClusterBus, DeliveryRequest } from '../engine.ports';

/** One node alone: there is nobody to publish to, and no other node to deliver through. */
export class MemoryClusterBus implements ClusterBus {
  readonly nodeId = randomUUID();

  publish(_event: BroadcastEvent): void {
    // no other node
  }

  async deliver(_nodeId: string, _request: DeliveryRequest, _timeoutMs: number): Promise<DeliveryStatus> {
    return Status.ERROR;
  }

  onBroadcast(_handler: (event: BroadcastEvent) => void): void {
    // no other node will ever broadcast
  }

  onDeliver(_handler: (request: DeliveryRequest) => Promise<DeliveryStatus>): void {
    // no other node will ever deliver here
  }

  async isHealthy(): Promise<boolean> {
    return true;
  }
}
