"""Status API for operators, served by ryu-manager on Settings.ryu_api_port (127.0.0.1).

    GET /netgpt/health            {"ok": true, "switches": N}
    GET /netgpt/topology          switches, links (with weights), hosts, as the forwarding app sees them
    GET /netgpt/flows             the latest flow statistics per switch (from the telemetry stream)
    GET /netgpt/allocations       cell -> MEC node
    GET /netgpt/telemetry?n=100   the most recent telemetry messages, newest first (n <= 1000)

Everything is read from Redis, where the other apps write their state, so this app holds none of its own.
"""
import json

import redis
from ryu.app.wsgi import ControllerBase, Response, WSGIApplication, route

from netgpt.controller.base import NetgptApp
from netgpt.core import bus
from netgpt.core.messages import MessageError

APP_KEY = "netgpt_status_app"


def _json(body, status=200):
    return Response(status=status, content_type="application/json", charset="utf-8", body=json.dumps(body).encode())


class StatusApi(NetgptApp):
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kwargs["wsgi"].register(StatusController, {APP_KEY: self})


class StatusController(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app: StatusApi = data[APP_KEY]

    def _redis_call(self, fn):
        try:
            return fn(self.app.redis)
        except redis.RedisError as exc:
            return _json({"error": f"redis unavailable: {exc}"}, status=503)

    @route("netgpt", "/netgpt/health", methods=["GET"])
    def health(self, req, **kwargs):
        def read(r):
            view = json.loads(r.get(bus.Keys.TOPOLOGY) or "{}")
            return _json({"ok": True, "switches": len(view.get("switches", []))})
        return self._redis_call(read)

    @route("netgpt", "/netgpt/topology", methods=["GET"])
    def topology(self, req, **kwargs):
        return self._redis_call(lambda r: _json(json.loads(r.get(bus.Keys.TOPOLOGY) or "{}")))

    @route("netgpt", "/netgpt/allocations", methods=["GET"])
    def allocations(self, req, **kwargs):
        return self._redis_call(lambda r: _json({c: json.loads(v) for c, v in r.hgetall(bus.Keys.ALLOCATIONS).items()}))

    @route("netgpt", "/netgpt/telemetry", methods=["GET"])
    def telemetry(self, req, **kwargs):
        try:
            n = int(req.params.get("n", "100"))
        except ValueError:
            return _json({"error": "n must be an integer"}, status=400)
        if not 1 <= n <= 1000:
            return _json({"error": "n must be between 1 and 1000"}, status=400)
        return self._redis_call(lambda r: _json(_recent(r, n)))

    @route("netgpt", "/netgpt/flows", methods=["GET"])
    def flows(self, req, **kwargs):
        def read(r):
            latest: dict[str, dict] = {}
            for msg in _recent(r, 1000):
                if msg["kind"] == "flow_stats":
                    key = f"{msg['dpid']}:{msg['priority']}:{json.dumps(msg['match'], sort_keys=True)}"
                    latest.setdefault(key, msg)
            by_switch: dict[int, list] = {}
            for msg in latest.values():
                by_switch.setdefault(msg["dpid"], []).append(msg)
            return _json({str(k): v for k, v in sorted(by_switch.items())})
        return self._redis_call(read)


def _recent(r, n: int) -> list[dict]:
    out = []
    for _id, fields in r.xrevrange(bus.Streams.TELEMETRY, count=n):
        try:
            out.append(bus.decode_entry(fields).model_dump(mode="json"))
        except MessageError:
            continue
    return out
