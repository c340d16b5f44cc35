import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { MetricsService } from '../observability/metrics.service';
import { DEDUP_STORE, DedupState, type DedupStore } from '../engine/engine.ports';
import type { ClientHandle, InboundFrame } from '../messaging/client';
import { Messenger } from '../messaging/messenger';
import { OnMessage } from '../messaging/on-message.decorator';
import { invalidMessage } from '../protocol/errors';
import { MessageType, Status, type DeliveryStatus } from '../protocol/protocol';
import { requireObject, requireString } from '../protocol/validation';

const CLIENT_MESSAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * DIALOG_MESSAGE: a private message routed to its receiver wherever it is, answered to the sender
 * with exactly one DELIVERY_MESSAGE. A client-supplied messageId makes retries safe (dedup).
 */
@Injectable()
export class DialogService {
  private readonly logger = new Logger(DialogService.name);
  /** Per client and receiver: the last DELIVERY_MESSAGE still to be sent (see report). */
  private readonly reportChains = new WeakMap<ClientHandle, Map<string, Promise<void>>>();

  constructor(
    private readonly messenger: Messenger,
    @Inject(DEDUP_STORE) private readonly dedup: DedupStore,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * Validates and starts the delivery before it returns (so one connection's dialogs leave in
   * order); the DELIVERY_MESSAGE follows when the outcome is known, without holding up the
   * connection's next frames.
   */
  @OnMessage(MessageType.DIALOG)
  handleDialog(client: ClientHandle, frame: InboundFrame): void | Promise<void> {
    const serverData = requireObject(frame, 'serverData');
    const receiver = requireString(serverData, 'receiver', 'serverData.receiver');
    const clientData = frame.clientData;
    if (clientData === undefined) throw invalidMessage('clientData is required');
    const clientJson = JSON.stringify(clientData);
    if (Buffer.byteLength(clientJson) > this.config.dialogMaxBytes) {
      throw invalidMessage(`clientData is larger than ${this.config.dialogMaxBytes} bytes`);
    }
    const suppliedId = serverData.messageId;
    if (suppliedId !== undefined && (typeof suppliedId !== 'string' || !CLIENT_MESSAGE_ID.test(suppliedId))) {
      throw invalidMessage('serverData.messageId must be 1 to 64 characters of A-Za-z0-9_-');
    }
    const messageId = suppliedId ?? randomUUID();
    const outbound =
      `{"type":"${MessageType.DIALOG}","clientData":${clientJson},"serverData":` +
      JSON.stringify({ messageId, sender: client.userId, sendTime: String(Date.now()) }) +
      '}';
    if (suppliedId === undefined) {
      this.report(client, receiver, messageId, this.messenger.deliver(receiver, outbound, this.config.deliveryTimeoutMs));
      return;
    }
    const reserved = this.dedup.reserve(client.userId, messageId).catch((err: unknown) => {
      // Without the store a retry may be delivered twice; delivering now beats losing the message.
      this.logger.warn({ connId: client.id, err: String(err) }, 'dedup store unavailable: delivering without dedup');
      return DedupState.NEW;
    });
    return reserved.then((state) => {
      if (state === DedupState.DELIVERED) {
        this.report(client, receiver, messageId, Promise.resolve(Status.SUCCESS));
      } else if (state === DedupState.PENDING) {
        this.report(client, receiver, messageId, this.dedup.outcome(client.userId, messageId, this.config.deliveryTimeoutMs * 2));
      } else {
        const delivery = this.messenger.deliver(receiver, outbound, this.config.deliveryTimeoutMs);
        this.report(
          client,
          receiver,
          messageId,
          delivery.catch(() => Status.ERROR as DeliveryStatus).then(async (status) => {
            await this.dedup.settle(client.userId, messageId, status).catch((err: unknown) =>
              this.logger.warn({ connId: client.id, err: String(err) }, 'dedup store unavailable: id not remembered'),
            );
            return status;
          }),
        );
      }
    });
  }

  /**
   * Sends the DELIVERY_MESSAGE once `outcome` is known, but never before the DELIVERYs of this
   * client's earlier dialogs to the same receiver: outcomes may settle out of order (the dedup path
   * settles a few ticks later than a dialog without a messageId, a remote node may answer late).
   */
  private report(client: ClientHandle, receiver: string, messageId: string, outcome: Promise<DeliveryStatus>): void {
    const stopTimer = this.metrics.dialogDeliveryDuration.startTimer();
    const settled = outcome.catch((err: unknown) => {
      this.logger.warn({ connId: client.id, err: String(err) }, 'dialog delivery failed');
      return Status.ERROR as DeliveryStatus;
    });
    let chains = this.reportChains.get(client);
    if (!chains) this.reportChains.set(client, (chains = new Map()));
    const previous = chains.get(receiver);
    const done: Promise<void> = (previous ? previous.then(() => settled, () => settled) : settled).then((status) => {
      if (chains.get(receiver) === done) chains.delete(receiver);
      stopTimer();
      this.metrics.dialogDeliveries.inc({ status });
      client.send(`{"type":"${MessageType.DELIVERY}","status":"${status}","serverData":{"messageId":"${messageId}"}}`);
    });
    chains.set(receiver, done);
  }
}
