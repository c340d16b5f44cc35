import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import {
  AVATAR_INDEX,
  CLUSTER_BUS,
  CommandOutcome,
  PRESENCE_REGISTRY,
  ProbeOutcome,
  type AvatarIndex,
  type ClusterBus,
  type NodeCommand,
  type PresenceRegistry,
  type ProbeRequest,
  type Session,
} from '../engine/engine.ports';
import { ActivityFeed } from '../messaging/activity';
import type { ChatClient } from '../messaging/chat-client';
import { ConnectionRegistry } from '../messaging/connection-registry';
import { Messenger } from '../messaging/messenger';
import type { AuthSuccessFrame, UserConnectionFrame, UserUpdateFrame } from '../protocol/frames';
import { ABNORMAL_CLOSURE, CloseCode, ConnectionStatus, MessageType, Status, type UserProfile } from '../protocol/protocol';
import { NodeUnreachableError } from './node-unreachable.error';
import { SESSION_OPTIONS, type SessionOptions } from './session.options';

export enum JoinOutcome {
  JOINED = 'JOINED',
  /** The user has a live session somewhere: AUTH error "1". */
  ALREADY_CONNECTED = 'ALREADY_CONNECTED',
  /** The single-session rule cannot be checked now (shared state unreachable): AUTH error "3". */
  UNAVAILABLE = 'UNAVAILABLE',
  /** The connection closed while it was joining. */
  CLOSED = 'CLOSED',
}

/** A client of this node that holds (or is claiming) a session. */
interface Held {
  client: ChatClient;
  session: Session;
}

/**
 * The session core: who is online. A verified client joins (single session per user, with the
 * duplicate-login probe; AUTH SUCCESS with the online list; CONNECT to everyone else) and leaves
 * (DISCONNECT to everyone else); profile changes reach everyone (USER_UPDATE_MESSAGE).
 */
@Injectable()
export class SessionService implements OnModuleInit {
  private readonly logger = new Logger(SessionService.name);
  /**
   * This node's clients that hold or are claiming a session, by connection id: from before the
   * claim is sent, so a duplicate login's probe always finds the connection behind a session.
   */
  private readonly held = new Map<string, Held>();

  constructor(
    @Inject(PRESENCE_REGISTRY) private readonly registry: PresenceRegistry,
    @Inject(AVATAR_INDEX) private readonly avatars: AvatarIndex,
    @Inject(CLUSTER_BUS) private readonly bus: ClusterBus,
    private readonly connections: ConnectionRegistry,
    private readonly messenger: Messenger,
    private readonly activity: ActivityFeed,
    @Inject(SESSION_OPTIONS) private readonly options: SessionOptions,
  ) {}

  onModuleInit(): void {
    this.bus.onCommand((command) => this.commandHere(command));
    // Sessions of a node that died: the node whose sweep removed them reports them (once).
    this.registry.onExpired((userIds) => {
      for (const userId of userIds) {
        this.messenger.broadcast(disconnectFrame(userId), userId);
        this.activity.report({ kind: 'disconnect', userId, code: ABNORMAL_CLOSURE });
      }
    });
    // After an outage: the user logged in elsewhere meanwhile. That newer session wins; this
    // connection goes without a DISCONNECT (the user is online).
    this.registry.onSessionLost((session) => {
      const held = this.held.get(session.connId);
      if (!held) return;
      this.held.delete(session.connId);
      this.connections.unregister(held.client);
      this.logger.warn({ connId: held.client.id }, 'session taken over by a newer login during an outage: closed');
      held.client.close(CloseCode.ALREADY_CONNECTED, 'this user connected elsewhere');
    });
    // After an outage longer than the lease: the others announced these users gone; announce them again.
    this.registry.onSessionsRestored((sessions) => {
      for (const session of sessions) this.messenger.broadcast(connectFrame(session.profile), session.userId);
    });
  }

  /** The session a client of this node holds, if any. */
  sessionOf(client: ChatClient): Session | undefined {
    return this.held.get(client.id)?.session;
  }

  /** Joins a client whose token AuthGuard verified. */
  async join(client: ChatClient): Promise<JoinOutcome> {
    const verified = client.user;
    if (!verified) throw new Error('join before the token was verified');
    let session: Session;
    try {
      const avatar = await this.avatars.get(verified.userId);
      // Profiles are values, never changed in place (updateProfile replaces them): the verified
      // one (shared with the token cache) is used as is unless the stored avatar differs.
      const profile = frozen(avatar ? { ...verified, avatar } : verified);
      // A value too (the memory registry keeps it as is instead of a copy).
      session = Object.freeze({ userId: profile.userId, nodeId: this.bus.nodeId, connId: client.id, profile });
      if (!client.isOpen) return JoinOutcome.CLOSED;
      this.held.set(client.id, { client, session });
      if (!(await this.claimOrProbe(client, session))) {
        this.held.delete(client.id);
        return client.isOpen ? JoinOutcome.ALREADY_CONNECTED : JoinOutcome.CLOSED;
      }
    } catch (err) {
      this.held.delete(client.id);
      this.logger.warn({ connId: client.id, err: String(err) }, 'presence unavailable: login refused');
      return JoinOutcome.UNAVAILABLE;
    }
    if (!client.isOpen) {
      await this.leave(client);
      return JoinOutcome.CLOSED;
    }
    // From here on broadcasts reach the client (held back until AUTH SUCCESS is written), so none
    // falls between the online list it gets and the presence changes after it.
    client.beginJoin(session.profile);
    this.connections.register(client);
    let userList: readonly Buffer[];
    try {
      // The joining user is in it: its session was claimed first.
      userList = await this.registry.listBytes(session);
    } catch (err) {
      this.logger.warn({ connId: client.id, err: String(err) }, 'online list unavailable: login refused');
      client.abortJoin();
      await this.leave(client);
      return JoinOutcome.UNAVAILABLE;
    }
    // Closed while the list was read: its leave has run (DISCONNECT); no CONNECT may follow it.
    if (!client.isOpen || this.held.get(client.id)?.session !== session) {
      client.abortJoin();
      await this.leave(client);
      return JoinOutcome.CLOSED;
    }
    client.completeJoin(authSuccessFrame(session.userId, userList, client.tokenExpiresAt));
    this.messenger.broadcast(connectFrame(session.profile), session.userId);
    this.activity.report({ kind: 'connect', userId: session.userId });
    return JoinOutcome.JOINED;
  }

  /**
   * Ends a client's session (idempotent): DISCONNECT to everyone else if it was still online.
   * `code` is how its connection ended (for the disconnect fact), when known.
   */
  async leave(client: ChatClient, code: number = ABNORMAL_CLOSURE): Promise<void> {
    const held = this.held.get(client.id);
    if (!held) return;
    this.held.delete(client.id);
    this.connections.unregister(client);
    let released = false;
    try {
      released = await this.registry.release(held.session);
    } catch (err) {
      // Shared state unreachable: the lease of this node expires the session; tell everyone we can reach.
      this.logger.warn({ connId: client.id, err: String(err) }, 'presence unavailable while leaving');
      released = true;
    }
    if (!released) return;
    this.messenger.broadcast(disconnectFrame(held.session.userId), held.session.userId);
    this.activity.report({ kind: 'disconnect', userId: held.session.userId, code });
  }

  /** Everyone online in the deployment. */
  online(): Promise<UserProfile[]> {
    return this.registry.list();
  }

  /** The profile of a user online anywhere in the deployment, if any. */
  async find(userId: string): Promise<UserProfile | undefined> {
    return (await this.registry.locate(userId))?.profile;
  }

  /**
   * Closes a user's connection wherever it is, with 4403 (the application's backend disconnected
   * it): its DISCONNECT goes out from its node. True when a connection was closed, false when the
   * user is not online; NodeUnreachableError when its node does not answer within `timeoutMs`.
   */
  async kick(userId: string, reason: string, timeoutMs: number): Promise<boolean> {
    const session = await this.registry.locate(userId);
    if (!session) return false;
    const command: NodeCommand = { kind: 'kick', userId, reason };
    const answer = await this.commandOnNode(session.nodeId, command, timeoutMs);
    return answer === CommandOutcome.DONE;
  }

  /**
   * Changes an online user's profile wherever the user is (its node applies it and tells everyone);
   * resolves with the new profile, or undefined when the user is not online; NodeUnreachableError
   * when its node does not answer within `timeoutMs`.
   */
  async changeProfile(userId: string, patch: Partial<UserProfile>, timeoutMs: number): Promise<UserProfile | undefined> {
    const session = await this.registry.locate(userId);
    if (!session) return undefined;
    const command: NodeCommand = { kind: 'profile', userId, patch };
    const answer = await this.commandOnNode(session.nodeId, command, timeoutMs);
    if (answer !== CommandOutcome.DONE) return undefined;
    return this.find(userId);
  }

  /**
   * Changes an online user's profile everywhere and tells everyone else (USER_UPDATE_MESSAGE with
   * the changed fields).
   */
  async updateProfile(userId: string, patch: Partial<UserProfile>): Promise<void> {
    const local = this.connections.get(userId);
    if (local?.profile) local.replaceProfile(frozen({ ...local.profile, ...patch, userId }));
    const changed = { ...patch };
    delete changed.userId;
    const update: UserUpdateFrame = { type: MessageType.USER_UPDATE, serverData: { ...changed, userId } };
    try {
      await this.registry.updateProfile(userId, changed);
    } finally {
      // Told even when the shared registry could not be written (this node's clients see the change).
      this.messenger.broadcast(update, userId);
      this.activity.report({ kind: 'profile', userId, changed });
    }
  }

  /**
   * Carries out a command on the node holding the user's connection (this one or another) and
   * resolves with its answer; throws NodeUnreachableError when that node does not answer in time.
   */
  private async commandOnNode(nodeId: string, command: NodeCommand, timeoutMs: number): Promise<string> {
    const answer = nodeId === this.bus.nodeId ? await this.commandHere(command) : await this.bus.command(nodeId, command, timeoutMs);
    if (answer === undefined || answer === CommandOutcome.UNREACHABLE) throw new NodeUnreachableError();
    return answer;
  }

  /** A command from another node (or this one) about a connection of this node. */
  private async commandHere(command: NodeCommand): Promise<string> {
    switch (command.kind) {
      case 'probe':
        return this.probeHere({ userId: command.userId, connId: command.connId }, command.timeoutMs);
      case 'kick': {
        const client = this.connections.get(command.userId);
        if (!client || !client.isOpen) return CommandOutcome.ABSENT;
        this.logger.log({ connId: client.id }, 'disconnected by the application\'s backend');
        client.close(CloseCode.KICKED, command.reason);
        await this.leave(client, CloseCode.KICKED);
        return CommandOutcome.DONE;
      }
      case 'profile': {
        if (!this.connections.get(command.userId)) return CommandOutcome.ABSENT;
        await this.updateProfile(command.userId, command.patch);
        return CommandOutcome.DONE;
      }
    }
  }

  /**
   * Claims the user's session; when the user already has one, asks whether its connection still
   * answers (DUPLICATE_PROBE_MS, on whichever node it is). A connection that does not is dropped
   * (its DISCONNECT goes out) and the claim is tried once more: of racing newcomers, the registry
   * lets exactly one win. False: a live connection holds the session (AUTH error "1").
   */
  private async claimOrProbe(client: ChatClient, session: Session): Promise<boolean> {
    if (await this.registry.claim(session)) return true;
    const existing = await this.registry.locate(session.userId);
    let outcome = ProbeOutcome.GONE;
    if (existing) {
      const request = { userId: existing.userId, connId: existing.connId };
      outcome =
        existing.nodeId === this.bus.nodeId
          ? await this.probeHere(request, this.options.duplicateProbeMs)
          : await this.probeThere(existing.nodeId, request);
    }
    if (outcome !== ProbeOutcome.GONE || !client.isOpen) return false;
    this.logger.log({ connId: client.id }, "the user's previous connection did not answer: replaced");
    return this.registry.claim(session);
  }

  /** A probe of a connection of another node: UNREACHABLE when that node does not answer. */
  private async probeThere(nodeId: string, request: ProbeRequest): Promise<ProbeOutcome> {
    const answer = await this.bus.command(nodeId, { kind: 'probe', ...request, timeoutMs: this.options.duplicateProbeMs }, 0);
    return answer === ProbeOutcome.ALIVE || answer === ProbeOutcome.GONE ? answer : ProbeOutcome.UNREACHABLE;
  }

  /**
   * A duplicate login asks about a connection of this node: ALIVE when it answers a ping within
   * `timeoutMs`; otherwise it is dropped and its session released (DISCONNECT) before GONE.
   */
  private async probeHere(request: ProbeRequest, timeoutMs: number): Promise<ProbeOutcome> {
    const held = this.held.get(request.connId);
    if (!held || held.session.userId !== request.userId) {
      // A session of this node without its connection (it is leaving): nothing holds it.
      const session = await this.registry.locate(request.userId);
      if (session && session.connId === request.connId && session.nodeId === this.bus.nodeId) await this.registry.release(session);
      return ProbeOutcome.GONE;
    }
    if (await held.client.probe(timeoutMs)) return ProbeOutcome.ALIVE;
    this.logger.log({ connId: held.client.id }, 'a duplicate login found this connection unresponsive: dropped');
    held.client.drop();
    await this.leave(held.client);
    return ProbeOutcome.GONE;
  }
}

/** The profile itself when it is already frozen, else a frozen copy. */
function frozen(profile: UserProfile): UserProfile {
  return Object.isFrozen(profile) ? profile : Object.freeze({ ...profile });
}

const AUTH_SUCCESS_HEAD = `${JSON.stringify({ type: MessageType.AUTH, status: Status.SUCCESS } satisfies Omit<AuthSuccessFrame, 'serverData'>).slice(0, -1)},"serverData":{"userId":`;
const AUTH_SUCCESS_TAIL = Buffer.from(']}}');

/**
 * AUTH SUCCESS (the shape of AuthSuccessFrame) in pieces, around the bytes of its userList (each
 * element preceded by a comma, as PresenceRegistry.listBytes gives them: the first comma is left out), with
 * the token's expiry (`expiresAt`, Unix ms as a decimal string) when it has one. The list's
 * buffers are not copied: the frame is their concatenation with a head and a tail.
 */
export function authSuccessFrame(userId: string, userList: readonly Buffer[], expiresAt?: number): Buffer[] {
  const parts: Buffer[] = [Buffer.from(`${AUTH_SUCCESS_HEAD}${JSON.stringify(userId)},"userList":[`)];
  for (const part of userList) {
    if (part.length === 0) continue;
    parts.push(parts.length === 1 ? part.subarray(1) : part);
  }
  parts.push(expiresAt === undefined ? AUTH_SUCCESS_TAIL : Buffer.from(`],"expiresAt":"${expiresAt}"}}`));
  return parts;
}

function connectFrame(profile: UserProfile): UserConnectionFrame {
  return { type: MessageType.USER_CONNECTION, serverData: { connectionStatus: ConnectionStatus.CONNECT, ...profile } };
}

function disconnectFrame(userId: string): UserConnectionFrame {
  return { type: MessageType.USER_CONNECTION, serverData: { connectionStatus: ConnectionStatus.DISCONNECT, userId } };
}
