"""The Lua scripts that run the stash's operations inside Redis, one per operation.

Each operation is one ``EVALSHA``: Redis runs a script alone, so every operation (``incr``,
``put(if_absent=)``, ``delete(if_value=)``, ``delete_table``...) is atomic for every process on
every host, exactly as when the dirty arbiter applies them one at a time. Layout of one stash
(``{P}`` is ``{prefix}``, a Redis hash tag, so a stash's keys share one cluster slot)::

    {P}:tables    set          the names of the existing tables
    {P}:h:<name>  hash         field -> value, one per key of table <name>
    {P}:x:<name>  sorted set   field -> expiry deadline (ms of Redis's clock), keys with a ttl

A field is a one-byte type tag and the key's text: ``s`` + UTF-8 for str keys, ``i`` + decimal
for int keys, ``b`` + the bytes of bytes keys. A value is msgpack, except an int in the int64
range, which is stored in decimal so ``HINCRBY`` counts it exactly (no msgpack value other than
a small positive int starts with a digit or ``-``, and small ints are never stored as msgpack).

Expiry: a script first removes its table's due fields (``purge``), with deadlines on Redis's
own clock (``TIME``), so no host's clock matters and no operation sees an expired key.

Replies are ``{status, ...}`` arrays where an operation can fail: see :class:`Status`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum


class Status(IntEnum):
    """The first element of a script's reply array."""

    OK = 0
    NO_TABLE = 1
    NO_KEY = 2
    NOT_AN_INT = 3  # followed by the value
    OVERFLOW = 4
    OTHER_VALUE = 5  # delete(if_value=): followed by the value the key holds


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script; ``sha`` is what ``EVALSHA`` names it by."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)


# KEYS[1] the tables set, KEYS[2] the table's hash, KEYS[3] its deadlines; ARGV[1] its name.
_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function purge(h, x, now)
  repeat
    local due = redis.call('ZRANGEBYSCORE', x, '-inf', now, 'LIMIT', 0, 500)
    if #due > 0 then
      redis.call('HDEL', h, unpack(due))
      redis.call('ZREM', x, unpack(due))
    end
  until #due < 500
end
local function has_table()
  return redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1
end
"""


def _script(name: str, body: str) -> Script:
    return Script(name, _PRELUDE + body)


# ARGV: name, field, value, ttl in ms or '', '1' for if_absent.
PUT = _script("put", """
local now = now_ms()
redis.call('SADD', KEYS[1], ARGV[1])
purge(KEYS[2], KEYS[3], now)
if ARGV[5] == '1' and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[2])
else
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[2])
end
return 1
""")

# ARGV: name, field.
GET = _script("get", """
purge(KEYS[2], KEYS[3], now_ms())
local v = redis.call('HGET', KEYS[2], ARGV[2])
if v then return {0, v} end
if has_table() then return {2} end
return {1}
""")

# ARGV: name, field, '1' to compare, the value it must hold.
DELETE = _script("delete", """
if not has_table() then return {1} end
purge(KEYS[2], KEYS[3], now_ms())
local v = redis.call('HGET', KEYS[2], ARGV[2])
if not v then return {0, 0} end
if ARGV[3] == '1' and v ~= ARGV[4] then return {5, v} end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return {0, 1}
""")

# ARGV: name, field, delta (decimal), ttl in ms or ''. The value comes back as a bulk string:
# a Lua number is a double and would round counters past 2**53.
INCR = _script("incr", """
local now = now_ms()
redis.call('SADD', KEYS[1], ARGV[1])
purge(KEYS[2], KEYS[3], now)
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 1 then
  if ARGV[4] == '' then
    redis.call('ZREM', KEYS[3], ARGV[2])
  else
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[2])
  end
  return {0, ARGV[3]}
end
local r = redis.pcall('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow', 1, true) then return {4} end
  return {3, redis.call('HGET', KEYS[2], ARGV[2])}
end
return {0, redis.call('HGET', KEYS[2], ARGV[2])}
""")

# ARGV: name, 'k' (fields) | 'i' (fields and values) | 'v' (values), a literal prefix the
# key's text must start with ('' for any), '1' when values need their fields (a pattern).
LIST = _script("list", """
if not has_table() then return {1} end
purge(KEYS[2], KEYS[3], now_ms())
local mode, p = ARGV[2], ARGV[3]
local function wanted(f) return p == '' or string.sub(f, 2, #p + 1) == p end
if mode == 'k' then
  local out = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
    if wanted(f) then out[#out + 1] = f end
  end
  return {0, out}
end
if mode == 'v' and ARGV[4] ~= '1' then return {0, redis.call('HVALS', KEYS[2])} end
local all, out = redis.call('HGETALL', KEYS[2]), {}
for i = 1, #all, 2 do
  if wanted(all[i]) then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return {0, out}
""")

COUNT = _script("count", """
if not has_table() then return {1} end
purge(KEYS[2], KEYS[3], now_ms())
return {0, redis.call('HLEN', KEYS[2])}
""")

CLEAR = _script("clear", """
if not has_table() then return {1} end
purge(KEYS[2], KEYS[3], now_ms())
local n = redis.call('HLEN', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3])
return {0, n}
""")

INFO = _script("info", """
if not has_table() then return {1} end
purge(KEYS[2], KEYS[3], now_ms())
return {0, redis.call('HLEN', KEYS[2]), redis.call('ZCARD', KEYS[3])}
""")

# KEYS[1] the tables set; ARGV[1] the key prefix ("{P}:"). The tables' own keys are derived
# from their names here (they cannot be known beforehand); they share the hash tag, so they
# are in the same cluster slot as KEYS[1].
INFO_ALL = Script("info_all", _PRELUDE + """
local now, out = now_ms(), {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h, x = ARGV[1] .. 'h:' .. name, ARGV[1] .. 'x:' .. name
  purge(h, x, now)
  out[#out + 1] = name
  out[#out + 1] = redis.call('HLEN', h)
  out[#out + 1] = redis.call('ZCARD', x)
end
return out
""")

ENSURE = Script("ensure", "return redis.call('SADD', KEYS[1], ARGV[1])")

# ARGV: name, field, '1' when a key is asked about.
EXISTS = _script("exists", """
if not has_table() then return 0 end
if ARGV[3] ~= '1' then return 1 end
purge(KEYS[2], KEYS[3], now_ms())
return redis.call('HEXISTS', KEYS[2], ARGV[2])
""")

DELETE_TABLE = Script("delete_table", """
local existed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return existed
""")

TABLES = Script("tables", "return redis.call('SMEMBERS', KEYS[1])")
