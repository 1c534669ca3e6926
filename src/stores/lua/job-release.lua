#!lua flags=allow-oom
-- KEYS: the job hash, the due set, the records list, the usernames seen (set).
-- ARGV: id, holder, now
if not held(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('HDEL', KEYS[1], 'holder', 'lease')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
