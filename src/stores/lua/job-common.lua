-- Shared by the job scripts (inserted after each one's first line).
-- KEYS: the job hash, the due set, the records list, the usernames seen (set); ARGV[1]: the job id.
local function held(holder)
  return redis.call('HGET', KEYS[1], 'state') == 'running' and redis.call('HGET', KEYS[1], 'holder') == holder
end
local function finish(state, at, retention)
  redis.call('HSET', KEYS[1], 'state', state, 'updated', at)
  redis.call('HDEL', KEYS[1], 'holder', 'lease', 'resumes')
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[4])
  redis.call('PEXPIRE', KEYS[1], retention)
  redis.call('PEXPIRE', KEYS[3], retention)
end
