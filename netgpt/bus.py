"""Redis stream and key names, in one place, and the two calls that write and read messages on them."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
import time
from typing import Callable, Iterator

import redis

from netgpt.messages import AgentHeartbeat, Message, MessageError, parse_message
from netgpt.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "netgpt"


class Streams:
    """Append-only streams (XADD). Readers use consumer groups so nothing is lost across restarts."""

    TELEMETRY = f"{PREFIX}:telemetry"  # PortStats, CellStats, FlowStats from the controller
    FORECASTS = f"{PREFIX}:forecasts"  # Forecast from edge agents
    USER_INTENTS = f"{PREFIX}:user_intents"  # UserIntent from edge agents
    OPERATOR_INTENTS = f"{PREFIX}:operator_intents"  # OperatorIntent from the intent layer
    HEARTBEATS = f"{PREFIX}:heartbeats"  # AgentHeartbeat from edge agents
    AUDIT = f"{PREFIX}:audit"  # FlowAction, Allocation: every change the controller made


class Keys:
    """Plain keys holding current state (latest value wins)."""

    @staticmethod
    def agent(node_id: str) -> str:  # string: the latest AgentHeartbeat JSON; expires when heartbeats stop
        return f"{PREFIX}:agent:{node_id}"

    AGENT_PATTERN = f"{PREFIX}:agent:*"

    ALLOCATIONS = f"{PREFIX}:allocations"  # hash cell -> Allocation JSON
    PINS = f"{PREFIX}:pins"  # hash cell -> node_id an operator pinned it to
    INTENT_STATUS = f"{PREFIX}:intent_status"  # hash intent_id -> IntentResult JSON
    LINK_CAPACITY = f"{PREFIX}:link_capacity"  # hash 'a-b' (dpids, smaller first) -> capacity in Mbit/s
    CELLS = f"{PREFIX}:cells"  # hash cell -> JSON list of [dpid, port] access ports (written when a topology starts)
    TOPOLOGY = f"{PREFIX}:topology"  # JSON of the controller's current topology view


def connect(settings: Settings | None = None, timeout_s: float = 2.0) -> redis.Redis:
    """A client that fails fast: one attempt per command. redis-py 8 otherwise retries a refused connection with
    exponential backoff, and a heartbeat or a monitoring loop would sit for tens of seconds while Redis is down;
    every caller here has its own retry loop."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    s = settings or get_settings()
    common = dict(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True,
                  retry=Retry(NoBackoff(), 0))
    if s.redis_socket:
        return redis.Redis(unix_socket_path=str(s.redis_socket), **common)
    return redis.Redis(host=s.redis_host, port=s.redis_port, **common)


def entry_fields(msg: Message) -> dict[str, str]:
    """A message as a stream entry: kind, schema version and the JSON."""
    return {"kind": msg.kind, "v": str(msg.v), "data": msg.model_dump_json()}  # type: ignore[attr-defined]


def publish(r: redis.Redis, stream: str, msg: Message, maxlen: int | None = None) -> str:
    """Append one message to a stream; returns the entry id."""
    return publish_many(r, stream, [msg], maxlen)[0]


def publish_many(r: redis.Redis, stream: str, msgs: list[Message], maxlen: int | None = None) -> list[str]:
    """Append messages in one round trip (a pipeline); returns the entry ids."""
    s_maxlen = maxlen if maxlen is not None else get_settings().stream_maxlen
    pipe = r.pipeline(transaction=False)
    for msg in msgs:
        pipe.xadd(stream, entry_fields(msg), maxlen=s_maxlen, approximate=True)
    return pipe.execute()


@dataclass
class DropCounter:
    """Counts messages that were dropped as malformed, by reason, so operators can see them."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def count(self, exc: Exception) -> None:
        """Count a MessageError under its reason: the text before the first ':' ("not JSON", "stale", ...)."""
        self.add(str(exc).split(":")[0])


def decode_entry(fields: dict[str, str]) -> Message:
    if "data" not in fields:
        raise MessageError("stream entry has no 'data' field")
    return parse_message(fields["data"])


def read_range(r: redis.Redis, stream: str, start: str = "-", count: int | None = None,
               drops: DropCounter | None = None) -> Iterator[tuple[str, Message]]:
    """Read stored messages in order; malformed entries are logged, counted and skipped."""
    for entry_id, fields in r.xrange(stream, min=start, count=count):
        try:
            yield entry_id, decode_entry(fields)
        except MessageError as exc:
            log.warning("dropped %s entry %s: %s", stream, entry_id, exc)
            if drops is not None:
                drops.count(exc)


def write_heartbeat(r: redis.Redis, hb: AgentHeartbeat, ttl_s: float) -> None:
    """The agent's latest state (expires after ttl_s without a new heartbeat) plus an entry on the heartbeat stream."""
    pipe = r.pipeline(transaction=False)
    pipe.set(Keys.agent(hb.node_id), hb.model_dump_json(), px=int(ttl_s * 1000))
    pipe.xadd(Streams.HEARTBEATS, entry_fields(hb), maxlen=10_000, approximate=True)
    pipe.execute()


def live_agents(r: redis.Redis, drops: DropCounter | None = None) -> dict[str, AgentHeartbeat]:
    """node_id -> latest heartbeat, for every agent whose heartbeat has not expired."""
    agents = {}
    keys = list(r.scan_iter(match=Keys.AGENT_PATTERN, count=100))
    for key, raw in zip(keys, r.mget(keys) if keys else []):  # one round trip: this runs every allocation tick
        if raw is None:  # expired between the scan and the read
            continue
        try:
            hb = parse_message(raw)
        except MessageError as exc:
            log.warning("dropped %s: %s", key, exc)
            if drops is not None:
                drops.count(exc)
            continue
        if isinstance(hb, AgentHeartbeat):
            agents[hb.node_id] = hb
    return agents


def consume_forever(r: redis.Redis, group: str, consumer: str, streams: list[str],
                    handle: Callable[[str, str, dict], None], start_id: str = "0", retry_s: float = 2.0,
                    block_ms: int = 1000) -> None:
    """Read streams through a consumer group, forever: handle(stream, entry_id, fields) each entry, then ack it.

    The group starts at `start_id` the first time ("0": everything kept; "$": only new entries) and afterwards carries
    on where it stopped, so nothing is lost while the reader restarts: entries it had received but not acknowledged
    are handled first. `handle` should count and drop a bad entry itself; anything it raises anyway is logged and the
    entry acknowledged, so one poisonous entry cannot end the reader (nor end it again after every restart). Redis
    outages are waited out.
    """
    while True:
        try:
            for stream in streams:
                try:
                    r.xgroup_create(stream, group, id=start_id, mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):  # anything but "the group exists"
                        raise
            for cursor in ("0", ">"):  # first our own unacknowledged entries, then new ones
                while True:
                    reply = r.xreadgroup(group, consumer, {s: cursor for s in streams}, count=100,
                                         block=None if cursor == "0" else block_ms)
                    got = False
                    for stream, entries in reply or []:
                        for entry_id, fields in entries:
                            got = True
                            try:
                                handle(stream, entry_id, fields)
                            except redis.RedisError:
                                raise  # an outage, not a bad entry: handled again once Redis is back
                            except Exception:
                                log.exception("%s: entry %s of %s dropped: its handler failed", group, entry_id, stream)
                            r.xack(stream, group, entry_id)
                    if cursor == "0" and not got:
                        break
        except redis.RedisError as exc:
            log.warning("%s: streams %s unavailable (%s); retrying in %.0f s", group, streams, exc, retry_s)
            time.sleep(retry_s)
