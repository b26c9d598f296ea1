/**
 * The Lua scripts of the Redis engine: each one step that must be atomic.
 * Every key a script touches for one topic carries the topic as its hash tag
 * (`{topic}`), so the script stays on one slot of a Redis Cluster.
 *
 * @module
 */

/** The most members one node may report for one topic (clamped). */
export const MAX_NODE_COUNT = 10_000_000;

/**
 * Heartbeat: ZADD this node at Redis's clock, prune nodes silent for ten
 * TTLs, return the nodes heard from within one TTL.
 * KEYS: nodes. ARGV: node, ttl (ms).
 */
export const HEARTBEAT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10 * ttl)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - ttl, '+inf')`;

/**
 * This node's member count of a topic (clamped), and the key's expiry.
 * KEYS: counts. ARGV: node, count, expiry (ms).
 */
export const SET_COUNT = `
local count = math.max(0, math.min(tonumber(ARGV[2]) or 0, ${MAX_NODE_COUNT}))
if count == 0 then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], count) end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1`;

/**
 * The sum of live nodes' counts of a topic, each clamped; counts of nodes
 * not heard from within the TTL are deleted. Returns {count, microseconds}.
 * KEYS: counts, nodes. ARGV: ttl (ms).
 */
export const COUNT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #fields, 2 do
  local seen = redis.call('ZSCORE', KEYS[2], fields[i])
  local n = tonumber(fields[i + 1])
  if seen and n and tonumber(seen) >= now - tonumber(ARGV[1]) then
    sum = sum + math.max(0, math.min(n, ${MAX_NODE_COUNT}))
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return {sum, t[1] * 1000000 + t[2]}`;

/**
 * This node's presence changes to a topic, stored and sent in one step: for
 * each pair, HSET `node:key` to the entry's JSON or HDEL it when the JSON is
 * empty; refresh the hash's expiry; publish the frame on the topic's
 * presence channel.
 * KEYS: members. ARGV: node, expiry (ms), channel, frame, then key, json pairs.
 */
export const SHARE_PRESENCE = `
for i = 5, #ARGV, 2 do
  local field = ARGV[1] .. ':' .. ARGV[i]
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], field)
  else redis.call('HSET', KEYS[1], field, ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;
