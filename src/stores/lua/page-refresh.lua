#!lua flags=allow-oom
-- Extends a page's lock (ARGV: token, TTL ms) if this replica still holds it; allowed when Redis is full, or a long load would lose its lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
