import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { MetricsService } from '../observability/metrics.service';
import { DEDUP_STORE, DedupState, type DedupStore } from '../engine/engine.ports';
import { RAW_CLIENT_DATA, type ClientHandle, type InboundFrame } from '../messaging/client';
import { Messenger } from '../messaging/messenger';
import { OnMessage } from '../messaging/on-message.decorator';
import { invalidMessage } from '../protocol/errors';
import { MessageType, Status, type DeliveryStatus } from '../protocol/protocol';
import { requireObject, requireString } from '../protocol/validation';

const CLIENT_MESSAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The JSON of a clientData that was not kept as written (a frame with escaped keys). */
function forwardable(clientData: unknown): string {
  try {
    return JSON.stringify(clientData);
  } catch {
    throw invalidMessage('clientData cannot be forwarded');
  }
}

/** A DELIVERY_MESSAGE still to be sent: its outcome, once known. */
interface PendingReport {
  readonly messageId: string;
  readonly startedAt: number;
  status?: DeliveryStatus;
}

/**
 * DIALOG_MESSAGE: a private message routed to its receiver wherever it is, answered to the sender
 * with exactly one DELIVERY_MESSAGE. A client-supplied messageId makes retries safe (dedup).
 *
 * The hot path (no messageId, receiver on this node) allocates no promise: the outcome comes
 * from the receiver socket's write callback straight to the report queue.
 */
@Injectable()
export class DialogService {
  private readonly logger = new Logger(DialogService.name);
  /**
   * Per client and receiver: the DELIVERY_MESSAGEs not sent yet, in the order of their dialogs.
   * Outcomes may be known out of order (the dedup path settles a few ticks later than a dialog
   * without a messageId, a remote node may answer late); each DELIVERY waits for the earlier ones.
   */
  private readonly pending = new WeakMap<ClientHandle, Map<string, PendingReport[]>>();

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
    // Forwarded as the client wrote it (byte-exact but for whitespace): a re-serialized value
    // would change numbers beyond a double (1e400, 23-digit integers).
    const clientJson = frame[RAW_CLIENT_DATA] ?? forwardable(clientData);
    // A UTF-8 byte is at most one UTF-16 unit: only a long string needs counting.
    if (clientJson.length > this.config.dialogMaxBytes / 3 && Buffer.byteLength(clientJson) > this.config.dialogMaxBytes) {
      throw invalidMessage(`clientData is larger than ${this.config.dialogMaxBytes} bytes`);
    }
    const suppliedId = serverData.messageId;
    if (suppliedId !== undefined && (typeof suppliedId !== 'string' || !CLIENT_MESSAGE_ID.test(suppliedId))) {
      throw invalidMessage('serverData.messageId must be 1 to 64 characters of A-Za-z0-9_-');
    }
    const messageId = suppliedId ?? randomUUID();
    const outbound =
      `{"type":"${MessageType.DIALOG}","clientData":${clientJson},"serverData":{"messageId":"${messageId}","sender":` +
      JSON.stringify(client.userId) +
      `,"sendTime":"${Date.now()}"}}`;
    if (suppliedId === undefined) {
      const report = this.open(client, receiver, messageId);
      this.messenger.deliver(receiver, outbound, this.config.deliveryTimeoutMs, (status) => this.settle(client, receiver, report, status));
      return;
    }
    const reserved = this.dedup.reserve(client.userId, messageId).catch((err: unknown) => {
      // Without the store a retry may be delivered twice; delivering now beats losing the message.
      this.logger.warn({ connId: client.id, err: String(err) }, 'dedup store unavailable: delivering without dedup');
      return DedupState.NEW;
    });
    return reserved.then((state) => {
      const report = this.open(client, receiver, messageId);
      if (state === DedupState.DELIVERED) {
        this.settle(client, receiver, report, Status.SUCCESS);
      } else if (state === DedupState.PENDING) {
        this.dedup.outcome(client.userId, messageId, this.config.deliveryTimeoutMs * 2).then(
          (status) => this.settle(client, receiver, report, status),
          (err: unknown) => {
            this.logger.warn({ connId: client.id, err: String(err) }, 'dialog delivery failed');
            this.settle(client, receiver, report, Status.ERROR);
          },
        );
      } else {
        this.messenger.deliver(receiver, outbound, this.config.deliveryTimeoutMs, (status) => {
          this.dedup.settle(client.userId, messageId, status).then(
            () => this.settle(client, receiver, report, status),
            (err: unknown) => {
              this.logger.warn({ connId: client.id, err: String(err) }, 'dedup store unavailable: id not remembered');
              this.settle(client, receiver, report, status);
            },
          );
        });
      }
    });
  }

  /** Queues the DELIVERY_MESSAGE of a dialog behind the earlier ones of this client to this receiver. */
  private open(client: ClientHandle, receiver: string, messageId: string): PendingReport {
    let byReceiver = this.pending.get(client);
    if (!byReceiver) this.pending.set(client, (byReceiver = new Map()));
    const report: PendingReport = { messageId, startedAt: performance.now(), status: undefined };
    const queue = byReceiver.get(receiver);
    if (queue) queue.push(report);
    else byReceiver.set(receiver, [report]);
    return report;
  }

  /** Records an outcome and sends every DELIVERY_MESSAGE at the head of the queue whose outcome is known. */
  private settle(client: ClientHandle, receiver: string, report: PendingReport, status: DeliveryStatus): void {
    if (report.status !== undefined) return;
    report.status = status;
    this.metrics.observeDialogDelivery(status, (performance.now() - report.startedAt) / 1000);
    const byReceiver = this.pending.get(client);
    const queue = byReceiver?.get(receiver);
    if (!byReceiver || !queue) return;
    let sent = 0;
    while (sent < queue.length && queue[sent].status !== undefined) {
      const { messageId, status: outcome } = queue[sent++];
      client.send(`{"type":"${MessageType.DELIVERY}","status":"${outcome}","serverData":{"messageId":"${messageId}"}}`);
    }
    if (sent === queue.length) byReceiver.delete(receiver);
    else if (sent > 0) queue.splice(0, sent);
  }
}
