import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable, Logger, UseGuards, UsePipes } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { AuthGuard } from '../auth/auth.guard';
import { DEDUP_STORE, DedupState, type DedupStore } from '../engine/engine.ports';
import { ActivityFeed } from '../messaging/activity';
import type { ChatClient } from '../messaging/chat-client';
import { Messenger } from '../messaging/messenger';
import { MetricsService } from '../observability/metrics.service';
import { invalidMessage } from '../protocol/errors';
import { FrameValidationPipe } from '../protocol/frame-validation.pipe';
import { RAW_CLIENT_DATA, type InboundFrame } from '../protocol/inbound';
import { MessageType, Status, type DeliveryStatus } from '../protocol/protocol';
import { DIALOG_OPTIONS, type DialogOptions } from './dialog.options';
import { DialogMessageDto } from './dto/dialog-message.dto';

/** A dialog as its fact will report it. */
interface DialogFact {
  readonly sender: string;
  readonly receiver: string;
  readonly messageId: string;
  readonly clientJson: string;
  readonly sendTime: string;
}

/** A DELIVERY_MESSAGE still to be sent: its outcome, once known. */
interface PendingReport {
  readonly messageId: string;
  readonly startedAt: number;
  status?: DeliveryStatus;
}

/** The JSON of a clientData that was not kept as written (a frame with escaped keys). */
function forwardable(clientData: unknown): string {
  try {
    return JSON.stringify(clientData);
  } catch {
    throw invalidMessage('clientData cannot be forwarded');
  }
}

/**
 * DIALOG_MESSAGE: a private message routed to its receiver wherever it is, answered to the sender
 * with exactly one DELIVERY_MESSAGE. A client-supplied messageId makes retries safe (dedup).
 *
 * The hot path (no messageId, receiver on this node) allocates no promise of its own: the outcome
 * comes from the receiver socket's write callback straight to the report queue.
 */
@Injectable()
@UseGuards(AuthGuard)
@UsePipes(FrameValidationPipe)
export class DialogService {
  private readonly logger = new Logger(DialogService.name);
  /**
   * Per client and receiver: the DELIVERY_MESSAGEs not sent yet, in the order of their dialogs.
   * Outcomes may be known out of order (the dedup path settles a few ticks later than a dialog
   * without a messageId, a remote node may answer late); each DELIVERY waits for the earlier ones.
   */
  private readonly pending = new WeakMap<ChatClient, Map<string, PendingReport[]>>();

  constructor(
    private readonly messenger: Messenger,
    @Inject(DEDUP_STORE) private readonly dedup: DedupStore,
    @Inject(DIALOG_OPTIONS) private readonly options: DialogOptions,
    private readonly metrics: MetricsService,
    private readonly activity: ActivityFeed,
  ) {}

  /**
   * Starts the delivery before it returns (so one connection's dialogs leave in order); the
   * DELIVERY_MESSAGE follows when the outcome is known, without holding up the connection's next
   * frames. With a client messageId, the connection's next frame waits for the dedup reservation only.
   */
  @SubscribeMessage(MessageType.DIALOG)
  dialog(@ConnectedSocket() client: ChatClient, @MessageBody() frame: DialogMessageDto): void | Promise<void> {
    const { receiver, messageId: suppliedId } = frame.serverData;
    // Forwarded as the client wrote it (byte-exact but for whitespace): a re-serialized value
    // would change numbers beyond a double (1e400, 23-digit integers).
    const clientJson = (frame as unknown as InboundFrame)[RAW_CLIENT_DATA] ?? forwardable(frame.clientData);
    this.checkSize(clientJson);
    const messageId = suppliedId ?? randomUUID();
    const report = this.open(client, receiver, messageId);
    return this.send(client.userId, receiver, clientJson, messageId, suppliedId !== undefined, (status) => this.settle(client, receiver, report, status));
  }

  /** DIALOG_MAX_BYTES: INVALID_MESSAGE for a larger clientData. */
  checkSize(clientJson: string): void {
    // A UTF-8 byte is at most one UTF-16 unit: only a long string needs counting.
    const max = this.options.dialogMaxBytes;
    if (clientJson.length > max / 3 && Buffer.byteLength(clientJson) > max) throw invalidMessage(`clientData is larger than ${max} bytes`);
  }

  /**
   * Delivers a dialog of `sender` to `receiver` wherever it is, and calls `done` once with the
   * outcome (the rules of DELIVERY_MESSAGE). With `dedup`, (sender, messageId) is delivered once
   * within the dedup window: a repeat gets the first attempt's outcome. A first attempt's outcome is
   * reported (the dialog fact), on this node. Returns a promise only while the dedup reservation is
   * pending (what the sender's next frame waits for). Also the Server API's dialog.
   */
  send(
    sender: string,
    receiver: string,
    clientJson: string,
    messageId: string,
    dedup: boolean,
    done: (status: DeliveryStatus) => void,
  ): void | Promise<void> {
    const sendTime = String(Date.now());
    const outbound =
      `{"type":"${MessageType.DIALOG}","clientData":${clientJson},"serverData":{"messageId":"${messageId}","sender":` +
      JSON.stringify(sender) +
      `,"sendTime":"${sendTime}"}}`;
    const fact = { sender, receiver, messageId, clientJson, sendTime };
    if (!dedup) {
      this.messenger.deliver(receiver, outbound, this.options.deliveryTimeoutMs, (status) => {
        this.reportFact(fact, status);
        done(status);
      });
      return;
    }
    return this.deliverOnce(fact, outbound, done);
  }

  /** A dialog with a client messageId: delivered once per (sender, messageId) within the dedup window. */
  private async deliverOnce(fact: DialogFact, outbound: string, done: (status: DeliveryStatus) => void): Promise<void> {
    const state = await this.dedup.reserve(fact.sender, fact.messageId).catch((err: unknown) => {
      // Without the store a retry may be delivered twice; delivering now beats losing the message.
      this.logger.warn({ err: String(err) }, 'dedup store unavailable: delivering without dedup');
      return DedupState.NEW;
    });
    switch (state) {
      case DedupState.DELIVERED:
        done(Status.SUCCESS);
        return;
      case DedupState.PENDING:
        void this.settleWithEarlierAttempt(fact, done);
        return;
      case DedupState.NEW:
        this.messenger.deliver(fact.receiver, outbound, this.options.deliveryTimeoutMs, (status) => void this.remember(fact, status, done));
    }
  }

  /** A repeat while the first attempt is pending gets that attempt's outcome. */
  private async settleWithEarlierAttempt(fact: DialogFact, done: (status: DeliveryStatus) => void): Promise<void> {
    const status = await this.dedup.outcome(fact.sender, fact.messageId, this.options.deliveryTimeoutMs * 2).catch((err: unknown) => {
      this.logger.warn({ err: String(err) }, 'dialog delivery failed');
      return Status.ERROR;
    });
    done(status);
  }

  /** Records the outcome of a first attempt in the dedup store, then reports it. */
  private async remember(fact: DialogFact, status: DeliveryStatus, done: (status: DeliveryStatus) => void): Promise<void> {
    await this.dedup.settle(fact.sender, fact.messageId, status).catch((err: unknown) => {
      this.logger.warn({ err: String(err) }, 'dedup store unavailable: id not remembered');
    });
    this.reportFact(fact, status);
    done(status);
  }

  private reportFact(fact: DialogFact, status: DeliveryStatus): void {
    if (!this.activity.active) return;
    this.activity.report({
      kind: 'dialog',
      messageId: fact.messageId,
      sender: fact.sender,
      receiver: fact.receiver,
      clientDataJson: fact.clientJson,
      sendTime: fact.sendTime,
      status,
    });
  }

  /** Queues the DELIVERY_MESSAGE of a dialog behind the earlier ones of this client to this receiver. */
  private open(client: ChatClient, receiver: string, messageId: string): PendingReport {
    let byReceiver = this.pending.get(client);
    if (!byReceiver) this.pending.set(client, (byReceiver = new Map()));
    const report: PendingReport = { messageId, startedAt: performance.now(), status: undefined };
    const queue = byReceiver.get(receiver);
    if (queue) queue.push(report);
    else byReceiver.set(receiver, [report]);
    return report;
  }

  /** Records an outcome and sends every DELIVERY_MESSAGE at the head of the queue whose outcome is known. */
  private settle(client: ChatClient, receiver: string, report: PendingReport, status: DeliveryStatus): void {
    if (report.status !== undefined) return;
    report.status = status;
    this.metrics.observeDialogDelivery(status, (performance.now() - report.startedAt) / 1000);
    const byReceiver = this.pending.get(client);
    const queue = byReceiver?.get(receiver);
    if (!byReceiver || !queue) return;
    let sent = 0;
    while (sent < queue.length && queue[sent].status !== undefined) {
      const { messageId, status: outcome } = queue[sent++];
      // The shape of DeliveryFrame, written by hand on the hot path.
      client.send(`{"type":"${MessageType.DELIVERY}","status":"${outcome}","serverData":{"messageId":"${messageId}"}}`);
    }
    if (sent === queue.length) byReceiver.delete(receiver);
    else if (sent > 0) queue.splice(0, sent);
  }
}
