/**
 * Every Redis key and channel of the cluster engine, under one prefix (default `gw:`).
 *
 *   <p>sessions               hash   userId -> session JSON {userId,nodeId,connId,profile}
 *   <p>nodes                  set    ids of the nodes that hold (or held) a lease
 *   <p>lease:<nodeId>         string a node's lease, PX PRESENCE_TTL_MS, renewed by its heartbeat
 *   <p>node-users:<nodeId>    set    userIds whose session is on that node (for the sweep)
 *   <p>swept:<nodeId>         string tombstone: that node's sessions were swept (DISCONNECTs went out)
 *   <p>dedup:<msgId>:<sender> string P (pending) | D (delivered) | S (succeeded, not remembered)
 *   <p>avatars                hash   userId -> avatar URL
 *   <p>quota:<key>            zset   attempt times of a quota (sliding window), PX the window
 *   <p>link:<nodeId>          string a node's link address and token (NodeLinks), PX 60 s, refreshed
 *
 *   channel <p>bc             broadcasts (CHAT, presence, avatar updates), every node
 *   channel <p>node:<nodeId>  deliveries to that node and the replies to its own deliveries
 *
 * The Lua scripts build `lease:`, `node-users:` and `swept:` keys of *other* nodes from the prefix,
 * so the engine needs a standalone Redis (or a single hash slot), not Redis Cluster.
 */
export const DEFAULT_KEY_PREFIX = 'gw:';

export class RedisKeys {
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {}

  get sessions(): string {
    return `${this.prefix}sessions`;
  }

  get nodes(): string {
    return `${this.prefix}nodes`;
  }

  lease(nodeId: string): string {
    return `${this.prefix}lease:${nodeId}`;
  }

  nodeUsers(nodeId: string): string {
    return `${this.prefix}node-users:${nodeId}`;
  }

  swept(nodeId: string): string {
    return `${this.prefix}swept:${nodeId}`;
  }

  /** messageId is [A-Za-z0-9_-] (no colon), so `messageId:sender` is unambiguous. */
  dedup(senderId: string, messageId: string): string {
    return `${this.prefix}dedup:${messageId}:${senderId}`;
  }

  get avatars(): string {
    return `${this.prefix}avatars`;
  }

  quota(key: string): string {
    return `${this.prefix}quota:${key}`;
  }

  link(nodeId: string): string {
    return `${this.prefix}link:${nodeId}`;
  }

  get broadcastChannel(): string {
    return `${this.prefix}bc`;
  }

  nodeChannel(nodeId: string): string {
    return `${this.prefix}node:${nodeId}`;
  }
}
