#!lua flags=allow-oom
-- KEYS: the job hash, the due set, the records list, the usernames seen (set).
-- ARGV: id, now, retention ms
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state == 'queued' or state == 'running' or state == 'paused' then finish('cancelled', ARGV[2], ARGV[3]) end
return redis.call('HGETALL', KEYS[1])
