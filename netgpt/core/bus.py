"""Redis stream and key names, in one place, and the two calls that write and read messages on them."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
import time
from typing import Callable, Iterator

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from netgpt.core.messages import AgentHeartbeat, Message, MessageError, parse_message
from netgpt.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "netgpt"


class Streams:
    """Append-only streams (XADD). Readers use consumer groups so nothing is lost across restarts."""

    TELEMETRY = f"{PREFIX}:telemetry"  # PortStats, CellStats, FlowStats from the controller
    FORECASTS = f"{PREFIX}:forecasts"  # Forecast from edge agents
    USER_INTENTS = f"{PREFIX}:user_intents"  # UserIntent from edge agents
    OPERATOR_INTENTS = f"{PREFIX}:operator_intents"  # OperatorIntent from the intent layer
    HEARTBEATS = f"{PREFIX}:heartbeats"  # AgentHeartbeat from edge agents
    AUDIT = f"{PREFIX}:audit"  # FlowAction, Allocation: every change the controller made; RegimeChange from forecasters


class Keys:
    """Plain keys holding current state (latest value wins)."""

    @staticmethod
    def agent(node_id: str) -> str:  # string: the latest AgentHeartbeat JSON; expires when heartbeats stop
        return f"{PREFIX}:agent:{node_id}"

    AGENT_PATTERN = f"{PREFIX}:agent:*"

    ALLOCATIONS = f"{PREFIX}:allocations"  # hash cell -> Allocation JSON
    PINS = f"{PREFIX}:pins"  # hash cell -> node_id an operator pinned it to
    INTENTS = f"{PREFIX}:intents"  # hash intent_id -> IntentRecord JSON: the intent store, survives restarts
    HOSTS = f"{PREFIX}:hosts"  # hash host name -> {"ip", "mac", "cell", "dpid", "port"} (written when a topology starts)
    SWITCHES = f"{PREFIX}:switches"  # hash switch name -> dpid (written when a topology starts)
    LINK_CAPACITY = f"{PREFIX}:link_capacity"  # hash 'a-b' (dpids, smaller first) -> capacity in Mbit/s
    CELLS = f"{PREFIX}:cells"  # hash cell -> JSON list of [dpid, port] access ports (written when a topology starts)
    TOPOLOGY = f"{PREFIX}:topology"  # JSON of the controller's current topology view
    FORECAST_REGIMES = f"{PREFIX}:forecast_regimes"  # hash forecast target -> its latest RegimeChange JSON
    FORECAST_LOOP = f"{PREFIX}:forecast_loop"  # JSON status of the running forecast loop; expires when it stops
    FORECAST_HISTORY = f"{PREFIX}:forecast_history"  # hash target name -> {"step_s", "end_ts", "values"}: warm start
    DROPS = f"{PREFIX}:drops"  # hash '<component>:<reason>' -> messages that component dropped for that reason


def connect(settings: Settings | None = None, timeout_s: float = 2.0) -> redis.Redis:
    """A client that fails fast: one attempt per command. redis-py 8 otherwise retries a refused connection with
    exponential backoff, and a heartbeat or a monitoring loop would sit for tens of seconds while Redis is down;
    every caller here has its own retry loop."""
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
    """Counts messages that were dropped (malformed, stale, naming what does not exist), by reason, so operators can
    see them: in `counts`, and with `r` and `component` given, in the Redis hash Keys.DROPS as well ('te:stale' -> n;
    a Redis error there loses that one increment, never the caller's work)."""

    counts: dict[str, int] = field(default_factory=dict)
    r: redis.Redis | None = None
    component: str = ""

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if self.r is not None:
            try:
                self.r.hincrby(Keys.DROPS, f"{self.component}:{reason}", 1)
            except redis.RedisError:
                pass

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


@dataclass
class GroupReader:
    """One consumer of a consumer group, read one batch at a time (consume_forever is this in a loop; the forecast
    loop's tests drive it batch by batch).

    The group starts at `start_id` the first time ("0": everything kept; "$": only new entries) and afterwards carries
    on where it stopped, so nothing is lost while the reader restarts: the entries this consumer had received but not
    acknowledged come first, then new ones. Every entry is handled, then acknowledged; what `handle` raises (other
    than a Redis error) is logged and the entry acknowledged all the same, so one poisonous entry cannot stop the
    reader, nor stop it again after every restart.
    """

    r: redis.Redis
    group: str
    consumer: str
    streams: list[str]
    start_id: str = "0"
    ready: bool = False  # the groups exist (made sure of at the first read and after every outage)
    caught_up: bool = False  # this consumer's entries left unacknowledged by an earlier run have been handled

    def ensure_groups(self) -> None:
        """Create the group on every stream (and the streams) if missing; idempotent."""
        for stream in self.streams:
            try:
                self.r.xgroup_create(stream, self.group, id=self.start_id, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # anything but "the group exists"
                    raise
        self.ready = True

    def restart(self) -> None:
        """After an outage: a restarted Redis may have lost the groups, and what was received before it comes first."""
        self.ready = self.caught_up = False

    def read(self, handle: Callable[[str, str, dict], None], count: int = 100, block_ms: int | None = 1000) -> int:
        """Read one batch (at most `count` entries per stream, waiting up to `block_ms` for new ones) and handle and
        acknowledge each entry; returns how many there were. A Redis error is raised (the entry it interrupted stays
        unacknowledged and comes again): call restart() before reading again."""
        if not self.ready:
            self.ensure_groups()
        reply = None
        if not self.caught_up:
            reply = self.r.xreadgroup(self.group, self.consumer, {s: "0" for s in self.streams}, count=count)
            self.caught_up = not any(entries for _stream, entries in reply or [])
        if self.caught_up:
            reply = self.r.xreadgroup(self.group, self.consumer, {s: ">" for s in self.streams}, count=count,
                                      block=block_ms)
        n = 0
        for stream, entries in reply or []:
            for entry_id, fields in entries:
                n += 1
                try:
                    handle(stream, entry_id, fields)
                except redis.RedisError:
                    raise  # an outage, not a bad entry: handled again once Redis is back
                except Exception:
                    log.exception("%s: entry %s of %s dropped: its handler failed", self.group, entry_id, stream)
                self.r.xack(stream, self.group, entry_id)
        return n

    def forever(self, handle: Callable[[str, str, dict], None], retry_s: float = 2.0, block_ms: int = 1000,
                count: int = 100, tick: Callable[[], None] | None = None,
                stop: Callable[[], bool] | None = None) -> None:
        """read() in a loop: handle(stream, entry_id, fields) each entry, then ack it. Redis outages are waited out,
        `retry_s` between attempts. `tick`, if given, is called after every read, so at least every `block_ms` while
        the streams are quiet: periodic work beside the reading (the forecast loop forecasts there); a Redis error in
        it is an outage like any other. `stop`, if given, is asked before every read, also while Redis is down; the
        loop returns once it says True."""
        while stop is None or not stop():
            try:
                self.read(handle, count=count, block_ms=block_ms)
                if tick is not None:
                    tick()
            except redis.RedisError as exc:
                log.warning("%s: streams %s unavailable (%s); retrying in %.0f s", self.group, self.streams, exc,
                            retry_s)
                time.sleep(retry_s)
                self.restart()


def consume_forever(r: redis.Redis, group: str, consumer: str, streams: list[str],
                    handle: Callable[[str, str, dict], None], start_id: str = "0", retry_s: float = 2.0,
                    block_ms: int = 1000, count: int = 100, tick: Callable[[], None] | None = None,
                    stop: Callable[[], bool] | None = None) -> None:
    """Read streams through a consumer group, forever: GroupReader(...).forever(handle, ...)."""
    GroupReader(r, group, consumer, list(streams), start_id=start_id).forever(
        handle, retry_s=retry_s, block_ms=block_ms, count=count, tick=tick, stop=stop)
