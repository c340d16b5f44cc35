import { randomUUID } from 'node:crypto';
import type { DeliveryStatus } from '../../protocol/protocol';
import { RemoteOutcome, type BroadcastEvent, type ClusterBus, type DeliveryRequest, type NodeCommand } from '../engine.ports';

/** One node alone: there is nobody to publish to, and no other node to deliver through. */
export class MemoryClusterBus implements ClusterBus {
  readonly nodeId = randomUUID();

  publish(_event: BroadcastEvent): void {
    // no other node
  }

  async deliver(_nodeId: string, _request: DeliveryRequest, _timeoutMs: number): Promise<RemoteOutcome> {
    return RemoteOutcome.UNREACHABLE; // no other node
  }

  async command(_nodeId: string, _command: NodeCommand, _timeoutMs: number): Promise<string | undefined> {
    return undefined; // no other node to ask
  }

  onCommand(_handler: (command: NodeCommand) => Promise<string>): void {
    // no other node will ever ask
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
