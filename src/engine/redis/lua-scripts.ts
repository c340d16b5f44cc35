import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/**
 * A Lua script run with EVALSHA, falling back to EVAL when Redis does not know it (first use,
 * or a Redis restarted with its script cache empty). Each script runs atomically: that is what
 * decides the races between nodes (two logins of one user, two nodes sweeping one dead node).
 */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Heartbeat: renews this node's lease, registers the node, consumes its swept tombstone.
 * KEYS: lease, nodes, swept    ARGV: nodeId, ttlMs
 * Returns {leaseExisted 0|1, wasSwept 0|1}.
 */
export const HEARTBEAT = new LuaScript(
  'heartbeat',
  `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local swept = redis.call('DEL', KEYS[3])
return {existed, swept}
`,
);

/**
 * Single-session claim.
 * KEYS: sessions, our lease, our node-users    ARGV: userId, session JSON, our nodeId, connId, prefix
 * Returns -1 when our lease is gone (re-register first), 0 when the user has a live session
 * (on this node, or on a node whose lease is alive), 1 when claimed, 2 when claimed over the
 * session of a node whose lease expired and that was not swept yet (the caller reports that
 * user expired, so its DISCONNECT goes out before the new CONNECT).
 */
export const CLAIM = new LuaScript(
  'claim',
  `
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local result = 1
if cur then
  local s = cjson.decode(cur)
  if s.nodeId == ARGV[3] and s.connId == ARGV[4] then return 1 end
  if s.nodeId == ARGV[3] or redis.call('EXISTS', ARGV[5] .. 'lease:' .. s.nodeId) == 1 then return 0 end
  redis.call('SREM', ARGV[5] .. 'node-users:' .. s.nodeId, ARGV[1])
  result = 2
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return result
`,
);

/**
 * Removes a session if it is still this one (same node and connection).
 * KEYS: sessions    ARGV: userId, connId, nodeId, prefix    Returns 1 when removed, else 0.
 */
export const RELEASE = new LuaScript(
  'release',
  `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local s = cjson.decode(cur)
if s.connId ~= ARGV[2] or s.nodeId ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', ARGV[4] .. 'node-users:' .. s.nodeId, ARGV[1])
return 1
`,
);

/**
 * Merges string fields into an online user's profile.
 * KEYS: sessions    ARGV: userId, patch JSON    Returns 1 when the user was online, else 0.
 */
export const UPDATE_PROFILE = new LuaScript(
  'update-profile',
  `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local s = cjson.decode(cur)
local patch = cjson.decode(ARGV[2])
for k, v in pairs(patch) do
  if type(v) == 'string' then s.profile[k] = v end
end
s.profile.userId = ARGV[1]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
return 1
`,
);

/**
 * Removes the sessions of every other node whose lease expired; exactly one caller removes each.
 * (A node never sweeps itself: when its own lease expired, its next heartbeat reconciles.)
 * KEYS: nodes, sessions    ARGV: prefix, tombstoneTtlMs, callerNodeId    Returns the removed userIds.
 */
export const SWEEP = new LuaScript(
  'sweep',
  `
local gone = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[3] and redis.call('EXISTS', ARGV[1] .. 'lease:' .. node) == 0 then
    local usersKey = ARGV[1] .. 'node-users:' .. node
    for _, uid in ipairs(redis.call('SMEMBERS', usersKey)) do
      local cur = redis.call('HGET', KEYS[2], uid)
      if cur and cjson.decode(cur).nodeId == node then
        redis.call('HDEL', KEYS[2], uid)
        gone[#gone + 1] = uid
      end
    end
    redis.call('DEL', usersKey)
    redis.call('SREM', KEYS[1], node)
    redis.call('SET', ARGV[1] .. 'swept:' .. node, '1', 'PX', ARGV[2])
  end
end
return gone
`,
);

/**
 * Makes Redis hold exactly this node's live sessions (after a Redis outage, a restart that lost
 * the data, or a lease that expired while the node was cut off).
 * KEYS: sessions, our lease, our node-users
 * ARGV: our nodeId, prefix, then one session JSON per local session
 * 1. Sessions of this node in Redis that are not local any more are removed (returned: their
 *    DISCONNECT may never have reached the other nodes).
 * 2. Each local session is written back unless another live node holds that user now.
 * Returns -1 when our lease is gone, else {removedUserIds, codes}: one code per local session,
 * 'K' kept (it was there), 'R' restored (it was missing, or held by a dead node), 'L' lost (the
 * user has a session on another live node: the local connection must go).
 */
export const RECONCILE = new LuaScript(
  'reconcile',
  `
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local me = ARGV[1]
local mine = {}
for i = 3, #ARGV do
  mine[cjson.decode(ARGV[i]).userId] = true
end
local removed = {}
for _, uid in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local cur = redis.call('HGET', KEYS[1], uid)
  if cur and cjson.decode(cur).nodeId == me then
    if not mine[uid] then
      redis.call('HDEL', KEYS[1], uid)
      redis.call('SREM', KEYS[3], uid)
      removed[#removed + 1] = uid
    end
  else
    redis.call('SREM', KEYS[3], uid)
  end
end
local codes = {}
for i = 3, #ARGV do
  local uid = cjson.decode(ARGV[i]).userId
  local cur = redis.call('HGET', KEYS[1], uid)
  local code = 'R'
  if cur then
    local c = cjson.decode(cur)
    if c.nodeId == me then
      code = 'K'
    elseif redis.call('EXISTS', ARGV[2] .. 'lease:' .. c.nodeId) == 1 then
      code = 'L'
    else
      redis.call('SREM', ARGV[2] .. 'node-users:' .. c.nodeId, uid)
    end
  end
  if code ~= 'L' then
    redis.call('HSET', KEYS[1], uid, ARGV[i])
    redis.call('SADD', KEYS[3], uid)
  end
  codes[#codes + 1] = code
end
return {removed, codes}
`,
);

/**
 * A node leaving for good (shutdown): removes its sessions, its lease and its registration.
 * KEYS: sessions, lease, node-users, nodes    ARGV: nodeId    Returns the removed userIds.
 */
export const LEAVE_NODE = new LuaScript(
  'leave-node',
  `
local removed = {}
for _, uid in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local cur = redis.call('HGET', KEYS[1], uid)
  if cur and cjson.decode(cur).nodeId == ARGV[1] then
    redis.call('HDEL', KEYS[1], uid)
    removed[#removed + 1] = uid
  end
end
redis.call('DEL', KEYS[3], KEYS[2])
redis.call('SREM', KEYS[4], ARGV[1])
return removed
`,
);

/**
 * Dedup reservation. KEYS: the id's key    ARGV: pending TTL ms
 * Returns 'N' (reserved now, pending), 'P' (another attempt pending) or 'D' (delivered).
 */
export const DEDUP_RESERVE = new LuaScript(
  'dedup-reserve',
  `
local v = redis.call('GET', KEYS[1])
if v == 'P' or v == 'D' then return v end
redis.call('SET', KEYS[1], 'P', 'PX', ARGV[1])
return 'N'
`,
);

/**
 * Sliding-window quota on a sorted set of attempt times.
 * KEYS: the quota's key    ARGV: nowMs, windowMs, limit, a member unique to this attempt
 * Drops the attempts at or before now - windowMs; when `limit` remain, returns 0 (not counted);
 * else counts this one, keeps the key for windowMs after it, and returns 1.
 */
export const QUOTA_TAKE = new LuaScript(
  'quota-take',
  `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`,
);

/**
 * Avatar index get-and-set. KEYS: avatars    ARGV: userId, url
 * Returns the URL the user had in the hash (nil when none), after setting the new one.
 */
export const AVATAR_SWAP = new LuaScript(
  'avatar-swap',
  `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return previous
`,
);
