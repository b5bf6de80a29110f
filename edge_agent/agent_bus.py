"""The edge agent's side of the Redis bus: heartbeats and per-request demand, without ever blocking or failing a user
request on Redis.

Both run on background threads. Requests put their UserIntent on a bounded queue and return at once; the publisher
thread adds it to the cell's demand aggregator (always, so the forecast stays right through an outage) and writes the
intent and the cell's updated Forecast to Redis. The heartbeat thread writes AgentHeartbeat every interval
(bus.write_heartbeat: the latest under netgpt:agent:<node>, with a TTL of three intervals, plus the heartbeat stream).
When Redis is away, both log once, drop what they cannot send (counted in `dropped`), and carry on: redis-py reconnects
on the next command, so heartbeats resume by themselves when Redis returns, and the return is logged once too.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from typing import Callable

import redis

from netgpt.edge_agent.user_intent.demand import CellDemandAggregator
from netgpt.core import bus
from netgpt.core.messages import AgentHeartbeat, UserIntent

log = logging.getLogger("edge_agent.bus")


class RedisLink:
    """One Redis client and whether it worked the last time; logs the transitions only, not every failure."""

    def __init__(self, connect: Callable[[], redis.Redis], node_id: str):
        self._connect, self.node_id = connect, node_id
        self._client: redis.Redis | None = None
        self.up: bool | None = None  # None until the first attempt
        self.lock = threading.Lock()

    def run(self, fn: Callable[[redis.Redis], object]) -> bool:
        with self.lock:
            try:
                if self._client is None:
                    self._client = self._connect()
                fn(self._client)
            except (redis.RedisError, OSError) as exc:
                if self.up is not False:
                    log.warning("agent %s: Redis unavailable (%s); serving continues, heartbeats resume when it "
                                "returns", self.node_id, exc)
                self.up = False
                return False
            if self.up is False:
                log.warning("agent %s: Redis is back; heartbeats resumed", self.node_id)
            self.up = True
            return True


class LoadMeter:
    """Requests per second over a sliding window."""

    def __init__(self, window_s: float = 10.0):
        self.window_s, self._times, self._lock = window_s, deque(), threading.Lock()

    def hit(self) -> None:
        with self._lock:
            self._times.append(time.monotonic())

    def rps(self) -> float:
        cutoff = time.monotonic() - self.window_s
        with self._lock:
            while self._times and self._times[0] < cutoff:
                self._times.popleft()
            return len(self._times) / self.window_s


class AgentBus:
    def __init__(self, link: RedisLink, heartbeat: Callable[[], AgentHeartbeat], interval_s: float,
                 aggregator: CellDemandAggregator | None = None, queue_size: int = 1000):
        self.link, self.heartbeat, self.interval_s = link, heartbeat, interval_s
        self.aggregator = aggregator or CellDemandAggregator()
        self.intents: queue.Queue[UserIntent] = queue.Queue(maxsize=queue_size)
        self.dropped = {"intents_queue_full": 0, "intents_redis_down": 0, "heartbeats_redis_down": 0}
        self.sent = {"intents": 0, "heartbeats": 0}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._beat, "heartbeat"), (self._publish, "intent-publisher")):
            t = threading.Thread(target=target, name=f"{self.link.node_id}-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=timeout_s)

    def submit(self, intent: UserIntent) -> None:
        """Never blocks the request: a full queue drops the intent (counted)."""
        try:
            self.intents.put_nowait(intent)
        except queue.Full:
            self.dropped["intents_queue_full"] += 1

    def beat_once(self) -> bool:
        ok = self.link.run(lambda r: bus.write_heartbeat(r, self.heartbeat(), ttl_s=3 * self.interval_s))
        if ok:
            self.sent["heartbeats"] += 1
        else:
            self.dropped["heartbeats_redis_down"] += 1
        return ok

    def _beat(self) -> None:
        while not self._stop.is_set():
            self.beat_once()
            self._stop.wait(self.interval_s)

    def publish_once(self, intent: UserIntent) -> bool:
        """Count the intent in its cell's demand (always, so the forecast stays right through an outage), then publish
        the intent and the cell's updated Forecast. The forecast goes out even when the intent fell below the
        aggregator's min_confidence, so readers always see the cell's current view after each prompt."""
        self.aggregator.add(intent)
        forecast = self.aggregator.forecast(intent.cell, now=intent.ts, source=intent.source)

        def send(r: redis.Redis) -> None:
            bus.publish(r, bus.Streams.USER_INTENTS, intent)
            bus.publish(r, bus.Streams.FORECASTS, forecast)

        ok = self.link.run(send)
        if ok:
            self.sent["intents"] += 1
        else:
            self.dropped["intents_redis_down"] += 1
        return ok

    def _publish(self) -> None:
        while not self._stop.is_set():
            try:
                intent = self.intents.get(timeout=0.2)
            except queue.Empty:
                continue
            self.publish_once(intent)
