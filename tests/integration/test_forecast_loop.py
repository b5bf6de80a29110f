"""The closed loop on real processes: OVS telemetry -> the forecast loop `netgpt up` started -> Redis -> proactive TE
moves a flow before the overload the forecast predicts.

Background traffic replays the UK academic backbone's morning rise (bench/data, real 5-minute steps, one per second
here), scaled so that its peak fills a 20 Mbit/s middle link of the diamond; the forecast loop gets the three days of
trace before the replay as its warm-start history (Keys.FORECAST_HISTORY) and forecasts every second, 5 s ahead, with
a 288-step season (one replayed day). TE acts on the forecasts' 90% quantile at its 80% threshold."""
import json
import re
import time

import pytest

from netgpt.core import bus
from netgpt.core.messages import FlowAction, Forecast, PortStats
from tests.integration.conftest import running_stack

pytestmark = pytest.mark.integration

CAP_BPS, PERIOD, UK_RISE = 20e6, 288, 7440  # the rise starts ~20 steps after UK_RISE


@pytest.fixture(scope="module")
def loop_stack(tmp_path_factory):
    with running_stack(tmp_path_factory, forecast_step_s=1.0, forecast_period=PERIOD, forecast_horizon=5,
                       forecast_refit_s=20.0) as s:
        yield s


def test_forecast_loop_moves_a_flow_before_the_predicted_overload(loop_stack):
    from netgpt.stack.controller_feed import carrier_link, publish_cells, wait_discovered
    from netgpt.stack.network import running_network
    from netgpt.stack.workload import TraceReplay, load_trace

    s, r = loop_stack, bus.connect(loop_stack)
    assert json.loads(r.get(bus.Keys.FORECAST_LOOP))["step_s"] == 1.0  # `up` started the loop with the settings
    replay = TraceReplay(load_trace("uk"), start=UK_RISE, steps=75, step_s=1.0, peak_bps=CAP_BPS)
    with running_network("diamond", s.ofp_port, capacity_mbps=CAP_BPS / 1e6) as net:
        wait_discovered(r, net)
        publish_cells(r, net)
        assert net.pingAll(timeout=2) == 0.0
        with replay.run(net, "srv1", "usr1"):
            ingress, port, nxt = carrier_link(r, net, "te1", ["te2", "te3"])
            target = f"port:{ingress}:{port}:tx_bps"
            r.hset(bus.Keys.FORECAST_HISTORY, target, replay.history_entry(3 * PERIOD, end_ts=replay.sent[0][0]))
            move = None
            while move is None and time.time() < replay.end_ts:
                time.sleep(0.5)
                move = next((m for _, m in bus.read_range(r, bus.Streams.AUDIT)
                             if isinstance(m, FlowAction) and m.source == "controller:te"), None)
        forecasts = [m for _, m in bus.read_range(r, bus.Streams.FORECASTS)
                     if isinstance(m, Forecast) and str(m.target) == target]
        measured = [m for _, m in bus.read_range(r, bus.Streams.TELEMETRY)
                    if isinstance(m, PortStats) and (m.dpid, m.port_no) == (ingress, port)]
    assert forecasts, f"no forecast of {target} was published"
    assert move is not None, (f"TE moved nothing; last forecasts of {target}: "
                              f"{[round(f.peak(0.9) / 1e6, 1) for f in forecasts[-5:]]} Mbit/s (models "
                              f"{sorted({f.model for f in forecasts[-5:]})}); measured there: "
                              f"{[round(m.tx_bps / 1e6, 1) for m in measured[-10:]]} Mbit/s; sent: "
                              f"{[round(bps / 1e6, 1) for _, bps in replay.sent[-10:]]} Mbit/s")
    print(f"moved at {move.ts:.1f}: {move.cause_id}; {len(forecasts)} forecasts of {target}")
    assert move.cause_id.endswith("(forecast)") and f"link {ingress}-{nxt}" in move.cause_id
    # Independently of TE's own view: what the switch port sent, as the monitor measured it, was under the threshold
    # when the flow moved; the forecast TE acted on was over it.
    before = [m for m in measured if m.ts <= move.ts]
    assert before and before[-1].tx_bps < s.te_threshold * CAP_BPS, before[-1].tx_bps
    # TE records the move after the switches acknowledged it, so a forecast published between its decision and that
    # record may be the last one before the move's time (2026-12-07: the last was 15.5 Mbit/s, under the 16 it acted
    # on): the one it acted on is among the last few, one a second.
    acted_on = [f for f in forecasts if f.ts <= move.ts][-3:]
    over = [f for f in acted_on if f.peak(s.forecast_act_quantile) > s.te_threshold * CAP_BPS]
    assert over, [round(f.peak(s.forecast_act_quantile) / 1e6, 2) for f in acted_on]
    # the cause gives the load to a whole percent (te.py, :.0%): 80.3% over an 80% threshold reads "at 80%"
    # (session 9's make test failed on `>` here)
    assert int(re.search(r" at (\d+)%", move.cause_id).group(1)) >= round(100 * s.te_threshold), move.cause_id
    assert over[-1].model.startswith("forecast:")
