#!lua flags=allow-oom
-- KEYS: the job hash, the due set, the records list, the usernames seen (set).
-- ARGV: id, holder, now, until
if not held(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'lease', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
