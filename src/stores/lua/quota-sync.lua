#!lua flags=allow-oom
-- KEYS: per counter, its value then its tallies. ARGV[1]: this replica; per counter (from ARGV[2]):
-- ms until it expires, this replica's tally, the counter's floor, and the least value this replica
-- knows it has; then per reservation: how many counters it names, and for each the counter's index
-- (from 1) and its limit.
-- Writes the tallies and floors, then makes the reservations in order: the n-th one made on a
-- counter takes this replica's tally to at least tally + n, an absolute value, so that the same
-- script run twice (or late, after the replica counted the call alone) counts it once.
-- Returns {values, this replica's tallies as stored, ms until each counter expires (PTTL), per
-- reservation the refusing position or -1}.
local replica, n = ARGV[1], #KEYS / 2
local values, tallies, wanted, known = {}, {}, {}, {}
local function expire(i)
  redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[4 * i - 2])
  redis.call('PEXPIRE', KEYS[2 * i], ARGV[4 * i - 2])
end
local function write(i)
  if wanted[i] <= tallies[i] then return end
  values[i] = values[i] + wanted[i] - tallies[i]
  tallies[i] = wanted[i]
  redis.call('HSET', KEYS[2 * i], replica, tallies[i])
  redis.call('SET', KEYS[2 * i - 1], values[i])
  expire(i)
end
for i = 1, n do
  values[i] = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  tallies[i] = tonumber(redis.call('HGET', KEYS[2 * i], replica) or '0')
  wanted[i] = tonumber(ARGV[4 * i - 1])
  known[i] = tonumber(ARGV[4 * i + 1])
  write(i)
  local floor = tonumber(ARGV[4 * i])
  if floor > values[i] then
    values[i] = floor
    redis.call('SET', KEYS[2 * i - 1], floor)
    expire(i)
  end
end
local ttls, refused, at = {}, {}, 4 * n + 2
while at <= #ARGV do
  local count, outcome = tonumber(ARGV[at]), -1
  for j = 1, count do
    local i = tonumber(ARGV[at + 2 * j - 1])
    if math.max(values[i], known[i]) + 1 > tonumber(ARGV[at + 2 * j]) then
      outcome = j - 1
      break
    end
  end
  if outcome == -1 then
    for j = 1, count do
      local i = tonumber(ARGV[at + 2 * j - 1])
      wanted[i] = wanted[i] + 1
      known[i] = known[i] + 1
      write(i)
    end
  end
  refused[#refused + 1] = outcome
  at = at + 1 + 2 * count
end
for i = 1, n do ttls[i] = redis.call('PTTL', KEYS[2 * i - 1]) end
return {values, tallies, ttls, refused}
