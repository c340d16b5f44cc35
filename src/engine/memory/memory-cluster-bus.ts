import { randomUUID } from 'node:crypto';
import { Status, type DeliveryStatus } from '../../protocol/protocol';
import { ProbeOutcome, type BroadcastEvent, type ClusterBus, type DeliveryRequest, type ProbeRequest } from '../engine.ports';

/** One node alone: there is nobody to publish to, and no other node to deliver through. */
export class MemoryClusterBus implements ClusterBus {
  readonly nodeId = randomUUID();

  publish(_event: BroadcastEvent): void {
    // no other node
  }

  async deliver(_nodeId: string, _request: DeliveryRequest, _timeoutMs: number): Promise<DeliveryStatus> {
    return Status.ERROR;
  }

  async probe(_nodeId: string, _request: ProbeRequest, _timeoutMs: number): Promise<ProbeOutcome> {
    return ProbeOutcome.UNREACHABLE;
  }

  onProbe(_handler: (request: ProbeRequest, timeoutMs: number) => Promise<ProbeOutcome>): void {
    // no other node will ever probe here
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
