"""What every NetGPT controller app shares: settings, the Redis connection, a counter of dropped messages, the
freshness window of statistics, barriers, and the one way other apps reach the forwarding app.

ryu-manager constructs apps with its own (*args, **kwargs); the keyword arguments here are for building an app outside
it (tests, tools): `TrafficEngineering(settings=s, redis=r, forwarding=fwd)`. Background loops start in `start()`,
which ryu-manager calls once every app is constructed, so an app built by hand runs none of them.
"""
import time

from redis import Redis
from ryu.base import app_manager
from ryu.ofproto import ofproto_v1_3

from netgpt.controller import ofp_util
from netgpt.core import bus
from netgpt.core.settings import Settings, get_settings

FORWARDING_APP = "ShortestPathForwarding"  # the Ryu app name (class name) of netgpt.controller.shortest_path
FRESH_INTERVALS = 2.5  # a statistics sample counts for 2.5 stats intervals: one late reply does not zero a busy link


class NetgptApp(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    REDIS_TIMEOUT_S = 2.0  # apps that make several round trips per decision use a longer one

    def __init__(self, *args, settings: Settings | None = None, redis: Redis | None = None, forwarding=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = settings if settings is not None else get_settings()
        self.redis = redis if redis is not None else bus.connect(self.settings, timeout_s=self.REDIS_TIMEOUT_S)
        self.drops = bus.DropCounter(r=self.redis, component=type(self).__name__)
        self._forwarding = forwarding

    @property
    def forwarding(self):
        """The ShortestPathForwarding app (None until ryu-manager has registered it). Other apps use only its
        documented interface: see the class docstring of netgpt.controller.shortest_path.ShortestPathForwarding."""
        if self._forwarding is not None:
            return self._forwarding
        return app_manager.lookup_service_brick(FORWARDING_APP)

    @property
    def fresh_s(self) -> float:
        """How old a statistics sample may be and still count."""
        return FRESH_INTERVALS * self.settings.stats_interval_s

    def is_fresh(self, ts: float, now: float | None = None) -> bool:
        """Whether a sample taken at `ts` still counts."""
        return (time.time() if now is None else now) - ts < self.fresh_s

    def barrier(self, dp) -> bool:
        """Wait until `dp` has applied everything sent to it before (make before break across switches)."""
        return ofp_util.barrier(self, dp)

    def flow_stats(self, dp, cookie) -> list:
        """The entries `dp` holds with this cookie, read back from the switch."""
        return ofp_util.flow_stats(self, dp, cookie)
