#!lua flags=allow-oom
-- Releases a page's lock if this replica still holds it; allowed when Redis is full, or waiters would wait out the lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
