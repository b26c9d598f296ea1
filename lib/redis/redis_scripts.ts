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
 * Heartbeat: ZADD this node at Redis's clock (with `gone`, a TTL ago: it is
 * closing, and stays named for the next node to start), prune nodes silent
 * for ten TTLs, return the nodes heard from within one TTL.
 * KEYS: nodes. ARGV: node, ttl (ms), optionally `gone`.
 */
export const HEARTBEAT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3] and now - ttl - 1 or now, ARGV[1])
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
 * The topics where a node counts members, for the others to decide once it
 * is gone (occupancy): `+` adds, `-` removes, `=` replaces; and the key's
 * expiry. KEYS: the node's topics. ARGV: expiry (ms), `+`/`-`/`=`, topics.
 */
export const NODE_TOPICS = `
if ARGV[2] == '=' then redis.call('DEL', KEYS[1]) end
if #ARGV > 2 then
  redis.call(ARGV[2] == '-' and 'SREM' or 'SADD', KEYS[1], unpack(ARGV, 3))
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
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
 * presence channel (`PUBLISH`, or `SPUBLISH` on a Redis Cluster, where the
 * channel has the members key's slot).
 * KEYS: members. ARGV: node, expiry (ms), channel, frame, publish command,
 * then key, json pairs.
 */
export const SHARE_PRESENCE = `
for i = 6, #ARGV, 2 do
  local field = ARGV[1] .. ':' .. ARGV[i]
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], field)
  else redis.call('HSET', KEYS[1], field, ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
redis.call(ARGV[5], ARGV[3], ARGV[4])
return 1`;

/** Milliseconds a stream's epoch and sequence outlive its last publish. */
export const STREAM_META_TTL = 86_400_000;

/**
 * Numbers, stores and publishes a push in one step (so live order is replay
 * order): an idempotency key already seen answers its position instead; a
 * topic without a stream (new, or lost with Redis's data) starts one with
 * the given epoch; with an expected position (`offset:epoch`, or `empty`:
 * only if the topic has no publish yet) the push is stored only if the
 * stream is still there, else the current position is answered; in a
 * `latest` topic it is kept as its key's latest value (a new key past the
 * most kept is refused); the stream is trimmed to exactly `size` entries
 * and expires `ttl` after the last publish; the frame goes out with its
 * position unless the channel is empty (a signing engine publishes it
 * itself, see `SEAL`).
 * Returns {0 stored | 1 duplicate | 2 conflict | 3 latest full, offset, epoch}.
 * KEYS: meta, stream, latest[, key]. ARGV: head, size, ttl, key ttl, new
 * epoch, channel (or empty), frame prefix, publish command (`PUBLISH`, or
 * `SPUBLISH` on a Redis Cluster: the channel has the topic's slot, so the
 * script stays on one shard), expected position (or empty), latest key (or
 * empty), most latest keys.
 */
export const APPEND = `
if KEYS[4] then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    local cut = string.find(seen, ':', 1, true)
    return {1, tonumber(string.sub(seen, 1, cut - 1)), string.sub(seen, cut + 1)}
  end
end
local epoch = redis.call('HGET', KEYS[1], 'e')
local top = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if ARGV[9] ~= '' then
  local current = (epoch and top > 0) and (top .. ':' .. epoch) or 'empty'
  if ARGV[9] ~= current then return {2, top, epoch or ''} end
end
if ARGV[10] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[10]) == 0
  and redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[11]) then
  return {3, top, epoch or ''}
end
if not epoch then
  epoch = ARGV[5]
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 's', 1)
redis.call('PEXPIRE', KEYS[1], ${STREAM_META_TTL})
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. offset, 'h', ARGV[1], 't', now)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[10], offset .. ':' .. epoch .. '\\n\\n' .. ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ${STREAM_META_TTL})
end
if KEYS[4] then
  redis.call('SET', KEYS[4], offset .. ':' .. epoch, 'PX', ARGV[4])
end
if ARGV[6] ~= '' then
  redis.call(ARGV[8], ARGV[6], ARGV[7] .. '@' .. offset .. ':' .. epoch .. '\\n' .. ARGV[1])
end
return {0, offset, epoch}`;

/**
 * A signing engine's second step after `APPEND`: stores the entry's seal
 * (its node and the signature of its position and head), forgets the seal
 * of the entry the stream trimmed, seals the topic's latest value for its
 * key when it is still this entry, and publishes the signed frame.
 * KEYS: seals, latest. ARGV: offset, seal, size, ttl, channel, frame,
 * publish command, latest key (or empty), the latest value sealed.
 */
export const SEAL = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], tostring(tonumber(ARGV[1]) - tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[8] ~= '' then
  local kept = redis.call('HGET', KEYS[2], ARGV[8])
  if kept and string.sub(kept, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
    redis.call('HSET', KEYS[2], ARGV[8], ARGV[9])
  end
end
redis.call(ARGV[7], ARGV[5], ARGV[6])
return 1`;

/**
 * Reads a topic's history: the first `limit` entries after `since` (or the
 * last `limit` when `since` is empty), skipping those older than `ttl`.
 * A topic without a stream gets one, so its epoch holds from the first
 * join; it expires after `ttl` unless a publish comes (a publish keeps the
 * epoch for `STREAM_META_TTL`). Returns {epoch, top, first young offset or -1,
 * offset, head[, seal], …}: with a seals key, each entry's seal too.
 * KEYS: meta, stream[, seals]. ARGV: since, limit, ttl, new epoch.
 */
export const HISTORY = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
  -- Only as long as history would be: joins alone cannot fill Redis.
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local top = tonumber(redis.call('HGET', KEYS[1], 's'))
local t = redis.call('TIME')
local young = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[3])
local limit = tonumber(ARGV[2])
local out = {epoch, top, -1}
local first = -1
local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
if oldest and tonumber(oldest[2][4]) >= young then
  first = tonumber(string.sub(oldest[1], 3))
elseif oldest then
  -- Some entries are too old: the first young one (entries are in time order).
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    if tonumber(entry[2][4]) >= young then
      first = tonumber(string.sub(entry[1], 3))
      break
    end
  end
end
out[3] = first
if limit == 0 or first == -1 then return out end
local entries
if ARGV[1] == '' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '0-' .. first, 'COUNT', limit)
  local n = #entries
  for i = 1, math.floor(n / 2) do
    entries[i], entries[n - i + 1] = entries[n - i + 1], entries[i]
  end
else
  local from = math.max(tonumber(ARGV[1]) + 1, first)
  entries = redis.call('XRANGE', KEYS[2], '0-' .. from, '+', 'COUNT', limit)
end
for _, entry in ipairs(entries) do
  local offset = string.sub(entry[1], 3)
  out[#out + 1] = tonumber(offset)
  out[#out + 1] = entry[2][2]
  if KEYS[3] then out[#out + 1] = redis.call('HGET', KEYS[3], offset) or '' end
end
return out`;

/**
 * Holds a keyed request's claim while its first run goes on: extends the
 * key's expiry only while it still holds the running marker (never a reply).
 * KEYS: the reply key. ARGV: the marker, ttl (ms).
 */
export const HOLD = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;
