"""One turn's writes, held back and committed to Redis at once, together with its outcome.

A worker can be killed at any instant. If a turn wrote its cart and conversation as it
went, a kill between those writes and the recorded outcome would leave effects that a
redelivery applies a second time. So a turn runs against :class:`StagedTurn`'s stores:
reads go to Redis, writes are staged in memory, and :meth:`StagedTurn.commit` applies the
cart (if its version is unchanged), the messages, the state and the outcome in one Lua
script, only while the caller still owns the update (a fence). Either all of a turn's
effects happen, exactly once, or none do and the turn may simply run again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from chatpay.adapters.redis.stores import (
    RedisStateStores,
    lines_json,
    message_json,
    plain,
    translated,
)
from chatpay.adapters.staged import ReadThrough, StagedCarts, StagedConversations, StagedWrites
from chatpay.core.errors import ConcurrencyConflict, StorageError
from chatpay.core.ports import Stores
from chatpay.core.telemetry import Event

log = logging.getLogger(__name__)

CommitStatus = Literal["committed", "fenced", "duplicate"]

# KEYS: outcome, then the fence list when fenced, then every cart, messages and state key the
# ops name (all of one business, so one hash tag and one Redis Cluster slot).
# ARGV: '1' when fenced, fence member, outcome JSON, claim ttl, retention ttl ('0': none), then ops
# that name keys by their index in KEYS:
#   cart  <cart key #> <expected version> <new version> <lines JSON>
#   clear <messages key #> <state key #>
#   push  <messages key #> <state key #> <max messages> <message JSON>
#   state <messages key #> <state key #> <field> <JSON value>
# Returns 1 committed, 0 fenced (the caller no longer owns the update), -1 an outcome
# already exists, -2 a cart changed since it was read. Checks run before any write. Every
# cart and conversation written gets its retention expiry refreshed (a conversation's
# messages and state together).
COMMIT = """
if ARGV[1] == '1' and not redis.call('LPOS', KEYS[2], ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local width = {cart = 5, clear = 3, push = 5, state = 5}
local i = 6
while i <= #ARGV do
  local op = ARGV[i]
  if not width[op] then return redis.error_reply('unknown commit op ' .. tostring(op)) end
  if op == 'cart' then
    local current = tonumber(redis.call('HGET', KEYS[tonumber(ARGV[i + 1])], 'version') or '0')
    if current ~= tonumber(ARGV[i + 2]) then return -2 end
  end
  i = i + width[op]
end
local ttl = tonumber(ARGV[5])
local conversations = {}
i = 6
while i <= #ARGV do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if op == 'cart' then
    redis.call('HSET', key, 'version', ARGV[i + 3], 'lines', ARGV[i + 4])
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  else
    local state = KEYS[tonumber(ARGV[i + 2])]
    if op == 'clear' then
      redis.call('DEL', key, state)
    elseif op == 'push' then
      redis.call('RPUSH', key, ARGV[i + 4])
      redis.call('LTRIM', key, -tonumber(ARGV[i + 3]), -1)
      conversations[key] = state
    else
      redis.call('HSET', state, ARGV[i + 3], ARGV[i + 4])
      conversations[key] = state
    end
  end
  i = i + width[op]
end
if ttl > 0 then
  for messages, state in pairs(conversations) do
    redis.call('EXPIRE', messages, ttl)
    redis.call('EXPIRE', state, ttl)
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return 1
"""



@dataclass
class _Staged(StagedWrites):
    events: list[Event] = field(default_factory=list)


class _BufferedEvents:
    """Events are written after the commit, so an abandoned attempt records none."""

    def __init__(self, turn: StagedTurn) -> None:
        self._turn = turn

    async def record(self, event: Event) -> None:
        self._turn.staged.events.append(event)

    async def list(self, business_id: str, thread_id: str | None = None, limit: int = 100) -> list[Event]:
        stored = await self._turn.base.events.list(business_id, thread_id, limit)
        mine = [e for e in self._turn.staged.events
                if e.business_id == business_id and (thread_id is None or e.thread_id == thread_id)]
        return (stored + mine)[-limit:]


def _one_slot(client: Any, keys: list[str]) -> None:
    """On a cluster client, refuse keys that span slots with a clear message (not a retried error)."""
    from redis.asyncio.cluster import RedisCluster

    if not isinstance(client, RedisCluster):
        return
    from redis.crc import key_slot

    if len({key_slot(k.encode()) for k in keys}) > 1:
        raise ValueError(f"a turn commit must stay in one business's hash tag; got keys {keys}")


class StagedTurn(ReadThrough[_Staged]):
    """Stores for one turn whose cart and conversation writes wait for :meth:`commit`.

    Args:
        state: the shared Redis stores the commit writes to.
        base: the runtime's stores; catalogs, usage and (after the commit) events go there.
    """

    def __init__(self, state: RedisStateStores, base: Stores) -> None:
        self.state = state
        self.base = base
        self.staged = _Staged()
        self.stores = Stores(
            catalogs=base.catalogs, conversations=StagedConversations(self, state.conversations, plain),
            carts=StagedCarts(self, state.carts),
            events=_BufferedEvents(self), usage=base.usage, turns=state.turns, orders=base.orders,
        )
        self._commit = state.client.register_script(COMMIT)

    @property
    def error(self) -> StorageError | None:
        """The first Redis read that failed during the turn; such a turn must not be committed."""
        return self.staged.error

    def _ops(self, keys: list[str]) -> list[Any]:
        """The commit's ops; every key they name is appended to ``keys`` and named by its index."""
        names = self.state.keys

        def index(key: str) -> int:
            if key not in keys:
                keys.append(key)
            return keys.index(key) + 1  # Lua counts from 1

        ops: list[Any] = []
        for (business_id, thread_id), cart in self.staged.carts.items():
            expected = self.staged.read_versions.get((business_id, thread_id), 0)
            ops += ["cart", index(names.cart(business_id, thread_id)), expected, cart.version, lines_json(cart)]
        touched = set(self.staged.cleared) | set(self.staged.appends) | set(self.staged.state)
        for key in sorted(touched):
            messages, state = index(names.messages(*key)), index(names.state(*key))
            if key in self.staged.cleared:
                ops += ["clear", messages, state]
            for m in self.staged.appends.get(key, []):
                ops += ["push", messages, state, self.state.conversations.max_messages, message_json(m)]
            for name, value in self.staged.state.get(key, {}).items():
                ops += ["state", messages, state, name, json.dumps(value)]
        return ops

    async def commit(
        self, business_id: str, update_id: int, outcome: Mapping[str, Any], *, fence: tuple[str, str] | None = None,
    ) -> CommitStatus:
        """Apply every staged write and record ``outcome``, atomically.

        Args:
            fence: ``(list key, member)`` that must still be in the list, proving that the
                caller still owns the update; without it the commit is unconditional.

        Returns:
            ``committed``; ``fenced`` when the fence failed (nothing written); ``duplicate``
            when an outcome for this update exists already (nothing written).

        Raises:
            StorageError: Redis failed, or a read during the turn failed (then nothing is sent).
            ConcurrencyConflict: a cart changed since the turn read it (nothing written).
            ValueError: on Redis Cluster, the keys are not all in one slot (the fence's queue is
                another business's, or its name has no hash tag): a configuration error.
        """
        if self.staged.error is not None:
            raise self.staged.error
        keys = [self.state.keys.outcome(business_id, update_id)]
        if fence is not None:
            keys.append(fence[0])
        ops = self._ops(keys)
        _one_slot(self.state.client, keys)
        args = ["1" if fence is not None else "0", fence[1] if fence is not None else "",
                json.dumps(plain(outcome)), self.state.turns.ttl_seconds, self.state.carts.ttl_for(business_id), *ops]
        status = int(await translated("turn commit", self._commit(keys=keys, args=args)))
        if status == -2:
            raise ConcurrencyConflict("cart changed during the turn", -1)
        if status == 1:
            for event in self.staged.events:
                try:
                    await self.base.events.record(event)
                except Exception:  # events are analytics; the turn's effects are already committed
                    log.warning("event not recorded after commit", extra={"event": event.name})
            return "committed"
        return "fenced" if status == 0 else "duplicate"
