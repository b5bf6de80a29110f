"""Fixtures of the controller tests: settings pointing at the test redis-server, and barriers and flow statistics
without ryu-manager."""
from types import SimpleNamespace

import pytest
from ryu.ofproto import ofproto_v1_3_parser

from netgpt.controller.base import NetgptApp
from netgpt.controller.shortest_path import ShortestPathForwarding
from netgpt.core.settings import Settings


@pytest.fixture(autouse=True)
def barriers_answered(monkeypatch):
    """A barrier needs Ryu's ofctl service, which runs only inside ryu-manager. Here the barrier request is sent to the
    switch like any other message (so the tests see where each barrier falls) and counts as answered at once."""
    def barrier(self, dp):
        dp.send_msg(ofproto_v1_3_parser.OFPBarrierRequest(dp))
        return True

    monkeypatch.setattr(NetgptApp, "barrier", barrier)

    def flow_stats(self, dp, cookie):  # the stand-in switch's own table answers, with zero counters
        return [SimpleNamespace(packet_count=0, byte_count=0) for _ in dp.table().get(cookie, [])]

    monkeypatch.setattr(NetgptApp, "flow_stats", flow_stats)


@pytest.fixture
def settings(redis_server) -> Settings:
    return Settings(redis_port=redis_server["port"])


@pytest.fixture
def forwarding(settings, redis_client) -> ShortestPathForwarding:
    return ShortestPathForwarding(settings=settings, redis=redis_client)
