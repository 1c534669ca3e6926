#!lua flags=allow-oom
-- KEYS[1]: a consumer's window, a hash: `taken` (tokens leased by every replica, plus the requests
-- they admitted alone and reported since) and the grant of each operation id.
-- ARGV[1]: the limit; ARGV[2]: the largest lease; ARGV[3]: what is left is split this many ways;
-- ARGV[4]: operation id; ARGV[5]: requests admitted alone, to add; ARGV[6]: ms until the hash expires.
-- Returns {tokens granted, taken}: never more than the limit less what was taken. A retried
-- operation gets its first grant back and adds nothing. Runs when Redis is full (allow-oom), as the
-- quota scripts do: else every replica would count alone.
local granted = redis.call('HGET', KEYS[1], ARGV[4])
if granted then return {tonumber(granted), tonumber(redis.call('HGET', KEYS[1], 'taken'))} end
local taken = redis.call('HINCRBY', KEYS[1], 'taken', ARGV[5])
local lease = 0
if taken < tonumber(ARGV[1]) then lease = math.min(tonumber(ARGV[2]), math.ceil((tonumber(ARGV[1]) - taken) / tonumber(ARGV[3]))) end
redis.call('HSET', KEYS[1], ARGV[4], lease)
taken = redis.call('HINCRBY', KEYS[1], 'taken', lease)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {lease, taken}
