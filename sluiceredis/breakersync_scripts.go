package sluiceredis

import "github.com/redis/go-redis/v9"

// The scripts of BreakerSync. KEYS are, in order, the record (a hash: e
// epoch, s "1" open or "0" closed, u end of the open period, o openings,
// k probe successes, r trip reason, by the instance that opened it), the
// probe slots (a sorted set: member instance:n, score the end of its
// lease), the quorum's votes (member instance, score the time of its
// trip) and the members' heartbeats (member instance, score its latest
// heartbeat). Times are µs of the server's clock. Each script replies the
// record as view() makes it (viewFields strings), and a script that
// changes the record PUBLISHes the same view, space-separated, on the
// channel. A new epoch is the old one plus one, and never less than the
// server's time, so that epochs keep growing when a record expires.
const syncPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function f(x) return string.format('%.0f', x) end
local function view()
  local v = redis.call('HMGET', KEYS[1], 'e', 's', 'u', 'o', 'r', 'by')
  if not v[1] then return {'0', '0', '0', '0', '0', f(now), ''} end
  return {v[1], v[2], f(tonumber(v[3]) - now), v[4], v[5] or '0', f(now), v[6] or ''}
end
local function publish(ch)
  local v = view()
  redis.call('PUBLISH', ch, table.concat(v, ' '))
  return v
end
local function open(ch, by, openfor, reason, ttl)
  local e = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
  local o = tonumber(redis.call('HGET', KEYS[1], 'o') or '0') + 1
  redis.call('HSET', KEYS[1], 'e', f(math.max(e + 1, now)), 's', '1', 'u', f(now + openfor),
    'o', tostring(o), 'k', '0', 'r', reason, 'by', by)
  redis.call('PEXPIRE', KEYS[1], math.ceil((openfor + ttl) / 1000))
  redis.call('DEL', KEYS[2], KEYS[3])
  return publish(ch)
end
`

// readScript replies the record. ARGV: instance, "1" to send its
// heartbeat, how long a heartbeat counts (µs).
var readScript = redis.NewScript(syncPrelude + `
if ARGV[2] == '1' then
  local live = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[4], f(now), ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', f(now - live))
  redis.call('PEXPIRE', KEYS[4], math.ceil(live / 1000) * 2)
end
return view()
`)

// tripScript opens a closed record for a trip of instance; in a quorum
// (ARGV[6] > 0) it records the instance's vote and opens only when the
// votes within the window reach the quorum: the larger of ARGV[6] and
// ARGV[7] × the live members. ARGV: channel, instance, open period (µs),
// reason, record TTL (µs), quorum, share, window (µs), heartbeat life (µs).
var tripScript = redis.NewScript(syncPrelude + `
if redis.call('HGET', KEYS[1], 's') == '1' then return view() end
local k = tonumber(ARGV[6])
if k > 0 then
  local window, live = tonumber(ARGV[8]), tonumber(ARGV[9])
  redis.call('ZADD', KEYS[4], f(now), ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', f(now - live))
  redis.call('PEXPIRE', KEYS[4], math.ceil(live / 1000) * 2)
  redis.call('ZADD', KEYS[3], f(now), ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', f(now - window))
  redis.call('PEXPIRE', KEYS[3], math.ceil(window / 1000) + 1)
  local need = math.max(k, math.ceil(tonumber(ARGV[7]) * redis.call('ZCARD', KEYS[4]) - 1e-9))
  if redis.call('ZCARD', KEYS[3]) < need then return view() end
end
return open(ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]))
`)

// reopenScript reopens the record after a failed probe of its half-open
// period, if the record is still that one. ARGV: channel, instance, open
// period (µs), reason, record TTL (µs), epoch.
var reopenScript = redis.NewScript(syncPrelude + `
local v = redis.call('HMGET', KEYS[1], 'e', 's')
if v[1] ~= ARGV[6] or v[2] ~= '1' then return view() end
return open(ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]))
`)

// acquireScript grants a probe slot of the half-open period epoch when
// fewer than slots leases are running: {'ok'}; {'busy', µs until the
// first lease ends} when they are all taken; {'stale', µs until the open
// period ends, view...} when the record is not that half-open period.
// ARGV: epoch, slots, lease (µs), member, record TTL (µs), then the
// members of the asker's probes that ended (freed before counting).
var acquireScript = redis.NewScript(syncPrelude + `
local v = redis.call('HMGET', KEYS[1], 'e', 's', 'u')
if v[1] ~= ARGV[1] or v[2] ~= '1' or tonumber(v[3]) > now then
  local r = {'stale', '0'}
  if v[1] == ARGV[1] and v[2] == '1' then r[2] = f(tonumber(v[3]) - now) end
  for _, x in ipairs(view()) do table.insert(r, x) end
  return r
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', f(now))
for i = 6, #ARGV do redis.call('ZREM', KEYS[2], ARGV[i]) end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {'busy', f(tonumber(first[2]) - now)}
end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], f(now + lease), ARGV[4])
redis.call('PEXPIRE', KEYS[2], math.ceil(lease / 1000) + 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5]) / 1000))
return {'ok'}
`)

// doneScript ends a probe of the half-open period epoch: it frees the
// slot member and, for a success, counts it; the count reaching need
// closes the record. ARGV: channel, epoch, member ("" if none), "1" for a
// success, need, record TTL (µs).
var doneScript = redis.NewScript(syncPrelude + `
local v = redis.call('HMGET', KEYS[1], 'e', 's')
if v[1] ~= ARGV[2] or v[2] ~= '1' then return view() end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
if ARGV[4] ~= '1' then return view() end
local ttl = math.ceil(tonumber(ARGV[6]) / 1000)
if redis.call('HINCRBY', KEYS[1], 'k', 1) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return view()
end
redis.call('HSET', KEYS[1], 'e', f(math.max(tonumber(v[1]) + 1, now)), 's', '0', 'u', f(now), 'o', '0', 'k', '0')
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('DEL', KEYS[2], KEYS[3])
return publish(ARGV[1])
`)
