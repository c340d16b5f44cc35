import type { DeliveryStatus, UserProfile } from '../protocol/protocol';

/**
 * The shared state of a deployment, behind interfaces. The single-node engine keeps it in
 * memory; the cluster engine keeps it in Redis. Feature modules depend on these ports only.
 */

/** One authenticated connection of a user, somewhere in the deployment. */
export interface Session {
  userId: string;
  nodeId: string;
  connId: string;
  profile: UserProfile;
}

/**
 * A registry's own value of a claimed session: a frozen session with a frozen profile is a value and
 * is kept as it is (the session core hands over such, so a connection costs one session object, not
 * two); any other is copied, with a frozen copy of its profile (the caller may change it).
 */
export function sessionValue(session: Session): Session {
  if (Object.isFrozen(session) && Object.isFrozen(session.profile)) return session;
  const profile = Object.isFrozen(session.profile) ? session.profile : Object.freeze({ ...session.profile });
  return { ...session, profile };
}

/** A serialized frame for the clients of a deployment, optionally skipping one user. */
export interface BroadcastEvent {
  frame: string;
  exceptUserId?: string;
}

/** A serialized frame to hand to one user's live connection on a given node. */
export interface DeliveryRequest {
  userId: string;
  frame: string;
}

/** What a duplicate login asks of the node holding a user's connection (docs/protocol.md, "AUTH_MESSAGE"). */
export interface ProbeRequest {
  userId: string;
  connId: string;
}

/** What a node says of its connection that a duplicate login probed. */
export enum ProbeOutcome {
  /** It answered a ping within the probe time: the newcomer is refused ("1"). */
  ALIVE = 'ALIVE',
  /** It did not answer (and was dropped, its session released) or was gone already. */
  GONE = 'GONE',
  /** The node holding it did not answer: nothing is known (the newcomer is refused). */
  UNREACHABLE = 'UNREACHABLE',
}

/**
 * What one node asks another to do to a user's connection there. Each kind has its answer:
 * probe -> ProbeOutcome; kick and profile -> CommandOutcome.
 */
export type NodeCommand =
  /** Ping the connection; drop it (and release its session) when it does not answer in `timeoutMs`. */
  | { kind: 'probe'; userId: string; connId: string; timeoutMs: number }
  /** Close the user's connection with 4403 (the Server API's disconnect). */
  | { kind: 'kick'; userId: string; reason: string }
  /** Change the user's online profile and tell everyone (the Server API's profile change). */
  | { kind: 'profile'; userId: string; patch: Partial<UserProfile> };

export enum CommandOutcome {
  /** Done on the user's connection. */
  DONE = 'DONE',
  /** The user has no connection on that node (any more). */
  ABSENT = 'ABSENT',
  /** The node did not answer in time (or is gone): nothing is known. */
  UNREACHABLE = 'UNREACHABLE',
}

/** Carries broadcasts and node-addressed deliveries between nodes. */
/** What became of a delivery handed to another node (ClusterBus.deliver). */
export enum RemoteOutcome {
  /** That node wrote the frame to the user's connection without an error. */
  DELIVERED = 'DELIVERED',
  /** That node answered that it did not deliver it (the user is not there, the write failed, it came too late). */
  REFUSED = 'REFUSED',
  /** Nobody took the request (nobody subscribed to that node's channel: the node is gone): not delivered. */
  UNREACHABLE = 'UNREACHABLE',
  /** No answer within the timeout, or the request may not have left: it may or may not have been delivered. */
  UNANSWERED = 'UNANSWERED',
}

export interface ClusterBus {
  readonly nodeId: string;
  /** Fans a frame out to the clients of every *other* node (the caller serves its own). */
  publish(event: BroadcastEvent): void;
  /**
   * Asks node `nodeId` to hand a frame to a user's connection there. Resolves with what became of
   * it (RemoteOutcome): delivered, refused by that node, taken by nobody, or no answer within
   * `timeoutMs`. Never rejects.
   */
  deliver(nodeId: string, request: DeliveryRequest, timeoutMs: number): Promise<RemoteOutcome>;
  /**
   * Asks node `nodeId` to carry out a command on a user's connection there, and resolves with its
   * answer (a ProbeOutcome or a CommandOutcome, by kind), or undefined when that node does not
   * answer within `timeoutMs` (or is gone). Never rejects.
   */
  command(nodeId: string, command: NodeCommand, timeoutMs: number): Promise<string | undefined>;
  /** Registers the handler of commands addressed to this node (it resolves with the answer). */
  onCommand(handler: (command: NodeCommand) => Promise<string>): void;
  /** Registers the handler of broadcasts that come from other nodes. */
  onBroadcast(handler: (event: BroadcastEvent) => void): void;
  /** Registers the handler of deliveries addressed to this node. */
  onDeliver(handler: (request: DeliveryRequest) => Promise<DeliveryStatus>): void;
  /** True when the bus can carry traffic between nodes now (always true on one node). */
  isHealthy(): Promise<boolean>;
}

/** Who is online and where: the single-session rule lives here. */
export interface PresenceRegistry {
  /** Atomically registers a session; false when this user already has a live session anywhere. */
  claim(session: Session): Promise<boolean>;
  /** Removes the session if it is still this one; true when it was removed by this call. */
  release(session: Session): Promise<boolean>;
  /** Every user online in the deployment. */
  list(): Promise<UserProfile[]>;
  /**
   * The online list of a login's AUTH SUCCESS as UTF-8 JSON: the JSON of each element, preceded by
   * a comma, in one or more buffers, in order (none: nobody online; listBytesOf builds it from
   * profiles). It reflects the registry no earlier than the call, and includes `self` (the
   * joining user's claimed session). Buffers handed out are never changed afterwards, so they may
   * be written to sockets as they are. A registry keeps it cheap (one node: kept serialized; Redis:
   * one read shared by the logins that wait for it).
   */
  listBytes(self: Session): Promise<readonly Buffer[]>;
  /** The live session of a user, if any. */
  locate(userId: string): Promise<Session | undefined>;
  /** Changes fields of an online user's profile (for example its avatar). */
  updateProfile(userId: string, patch: Partial<UserProfile>): Promise<void>;
  /**
   * Registers the handler called with the users whose sessions vanished without a release
   * (their node died); called on exactly one node per vanished session.
   */
  onExpired(handler: (userIds: string[]) => void): void;
  /**
   * Registers the handler called with a session of *this* node that the registry no longer
   * holds while its connection is still open: after an outage the user turned out to have a
   * newer session on another node. The connection must be closed (4409) without a DISCONNECT
   * (the user is online elsewhere). Never called on a single node.
   */
  onSessionLost(handler: (session: Session) => void): void;
  /**
   * Registers the handler called with sessions of *this* node written back to the registry after
   * the other nodes had announced them gone (this node was cut off from the shared state longer
   * than its lease, and swept): their CONNECT should be broadcast again. Never called on a single
   * node.
   */
  onSessionsRestored(handler: (sessions: Session[]) => void): void;
}

export enum DedupState {
  /** This attempt owns the id: deliver, then settle. */
  NEW = 'NEW',
  /** Delivered within the window: answer SUCCESS, do not deliver again. */
  DELIVERED = 'DELIVERED',
  /** Another attempt is under way: wait for its outcome. */
  PENDING = 'PENDING',
}

/** Memory of client-supplied message ids, keyed by (sender, messageId). */
export interface DedupStore {
  reserve(senderId: string, messageId: string): Promise<DedupState>;
  /** SUCCESS remembers the id for the dedup window; ERROR forgets it (a repeat is a new attempt). */
  settle(senderId: string, messageId: string, status: DeliveryStatus): Promise<void>;
  /** The outcome of a pending attempt; ERROR if it is not settled within `timeoutMs`. */
  outcome(senderId: string, messageId: string, timeoutMs: number): Promise<DeliveryStatus>;
}

/**
 * userId -> avatar URL of the avatars saved through SAVE_AVATAR. These win over the avatar the
 * authorization server reports, across reconnects, restarts and nodes (docs/protocol.md).
 */
export interface AvatarIndex {
  get(userId: string): Promise<string | undefined>;
  /** Only the users that have a saved avatar are in the result. */
  getMany(userIds: string[]): Promise<Map<string, string>>;
  /**
   * Resolves once the new URL is durable and visible to get/getMany, with the URL it replaced
   * (undefined when the user had none); rejects otherwise. Get-and-set is atomic: of concurrent
   * sets of one user, each gets a different previous URL, so every replaced URL is handed out
   * exactly once (and its file can be deleted exactly once).
   */
  set(userId: string, url: string): Promise<string | undefined>;
}



/**
 * Per-key quotas shared by the nodes of a deployment (for example the avatar uploads of a user:
 * AVATAR_SAVES_PER_MINUTE). In memory on a single node, in Redis in cluster mode.
 */
export interface QuotaStore {
  /**
   * Sliding window: resolves true, and counts this attempt, when fewer than `limit` attempts of
   * `key` were counted in the last `windowMs` milliseconds; false otherwise (a refused attempt is
   * not counted, so at most `limit` attempts pass in any window of `windowMs`). Rejects when the
   * shared state is unreachable: the caller decides whether to allow or refuse then.
   */
  take(key: string, limit: number, windowMs: number): Promise<boolean>;
}



/**
 * A list of profiles in the shape of PresenceRegistry.listBytes: each profile's JSON preceded by a
 * comma, in one buffer (none for an empty list).
 */
export function listBytesOf(profiles: readonly UserProfile[]): Buffer[] {
  let json = '';
  for (const profile of profiles) json += `,${JSON.stringify(profile)}`;
  return json ? [Buffer.from(json)] : [];
}

export const CLUSTER_BUS = Symbol('CLUSTER_BUS');
export const PRESENCE_REGISTRY = Symbol('PRESENCE_REGISTRY');
export const DEDUP_STORE = Symbol('DEDUP_STORE');
export const AVATAR_INDEX = Symbol('AVATAR_INDEX');
export const QUOTA_STORE = Symbol('QUOTA_STORE');
