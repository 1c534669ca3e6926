#!lua flags=allow-oom
-- KEYS: the job hash, the due set, the records list, the usernames seen (set).
-- ARGV: id, holder, now, state, at (resumes or retry; '' when failed), error, retention ms
if not held(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'error', ARGV[6], 'updated', ARGV[3])
if ARGV[4] == 'failed' then
  finish('failed', ARGV[3], ARGV[7])
  return 1
end
redis.call('HSET', KEYS[1], 'state', ARGV[4])
redis.call('HDEL', KEYS[1], 'holder', 'lease')
if ARGV[4] == 'paused' then
  redis.call('HSET', KEYS[1], 'resumes', ARGV[5])
else
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
return 1
