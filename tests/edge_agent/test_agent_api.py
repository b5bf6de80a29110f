"""The edge agent's HTTP contract: the four modes, bad input as 4xx with a message, a cloud that is down or hangs, and
each request's demand published for the controller."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from netgpt.edge_agent.agent import AgentSettings, EdgeAgent, create_app
from netgpt.core import bus
from netgpt.core.messages import EdgePromptResponse, UserIntent
from netgpt.stack.services import free_port
from tests.edge_agent.conftest import StubClassifier


def make_client(edge_lm, cloud_url: str, redis_port: int = 1, timeout_s: float = 20.0, **kw) -> TestClient:
    settings = AgentSettings(cloud_url=cloud_url, cloud_model=kw.pop("model", "tiny-edge"), redis_port=redis_port,
                             cloud_timeout_s=timeout_s, cloud_max_tokens=8, edge_max_tokens=8, draft_tokens=4, **kw)
    agent = EdgeAgent(settings, "mec1", ["c1", "c2"], "127.0.0.1:8100", lm=edge_lm, classifier=StubClassifier())
    return TestClient(create_app(agent))


@pytest.fixture(scope="module")
def client(edge_lm, tiny_cloud):
    with make_client(edge_lm, tiny_cloud["url"], model=tiny_cloud["model"]) as c:
        yield c


def ask(client, text="what should I wear today?", cell="c1", mode="netgpt", user="alice"):
    return client.post("/v1/prompt", json={"user": user, "cell": cell, "text": text, "mode": mode})


def test_netgpt_mode_completes_with_location_and_the_cloud_answers(client):
    r = ask(client)
    assert r.status_code == 200, r.text
    resp = EdgePromptResponse.model_validate(r.json())
    assert resp.answered_by == "cloud" and resp.cloud_tokens_in > 0 and resp.cloud_tokens_out > 0
    assert "Lyon" in resp.completed_prompt and "what should I wear today?" in resp.completed_prompt
    assert {"city", "local_time"} <= set(resp.location_facts)
    assert resp.total_ms >= resp.cloud_ms > 0 and resp.edge_ms > 0


def test_cloud_only_sends_the_raw_prompt(client):
    resp = ask(client, mode="cloud-only").json()
    assert resp["completed_prompt"] == "what should I wear today?" and resp["answered_by"] == "cloud"
    assert resp["edge_tokens_in"] == 0 and resp["location_facts"] == []


def test_edge_only_never_calls_the_cloud(client):
    resp = ask(client, mode="edge-only").json()
    assert resp["answered_by"] == "edge" and resp["cloud_tokens_in"] == resp["cloud_tokens_out"] == 0
    assert "edge_lm_answer" in resp["flags"]
    exact = ask(client, text="what time is it here?", mode="edge-only").json()
    assert "Lyon" in exact["answer"] and exact["edge_confidence"] == 1.0


def test_routed_answers_lookups_at_the_edge_and_the_rest_in_the_cloud(client):
    lookup = ask(client, text="what time is it here?", mode="routed").json()
    assert lookup["answered_by"] == "edge" and lookup["cloud_tokens_in"] == 0
    other = ask(client, text="write a haiku about autumn", mode="routed").json()
    # At the default threshold 1.0 no LM answer can be trusted (its confidence is below 1): none is computed.
    assert other["answered_by"] == "cloud" and other["edge_confidence"] is None and other["edge_tokens_out"] == 0


def test_a_cell_of_another_node_is_served_for_failover_but_not_announced(client):
    """mec1's home cells are c1, c2; the controller may move c3 (Osaka) here when mec2 fails."""
    resp = ask(client, text="what time is it here?", cell="c3", mode="edge-only").json()
    assert "Osaka" in resp["answer"]
    assert client.get("/health").json()["cells"] == ["c1", "c2"]


@pytest.mark.parametrize("body, status, words", [
    ({"user": "a", "cell": "c1", "text": ""}, 422, "text"),
    ({"user": "a", "cell": "c1", "text": "   "}, 422, "empty"),
    ({"user": "a", "cell": "c1", "text": "x" * 2001}, 422, "2000"),
    ({"user": "a", "cell": "c9", "text": "hi"}, 404, "c9"),
    ({"user": "a", "cell": "c1", "text": "hi", "mode": "telepathy"}, 422, "mode"),
    ({"cell": "c1", "text": "hi"}, 422, "user"),
])
def test_bad_input_is_a_4xx_with_a_message(client, body, status, words):
    r = client.post("/v1/prompt", json=body)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert "Traceback" not in r.text


def test_a_body_that_is_not_json_is_a_documented_400(client):
    r = client.post("/v1/prompt", content=b"\xff{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "pars" in r.json()["error"]
    assert "400" in client.get("/openapi.json").json()["paths"]["/v1/prompt"]["post"]["responses"]


def test_openapi_documents_the_contract(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/prompt" in spec["paths"] and "EdgePromptRequest" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200
    cells = client.get("/v1/cells").json()
    assert set(cells) == {"c1", "c2", "c3", "c4", "c5", "c6"} and cells["c1"]["timezone"] == "Europe/Paris"


def test_cloud_refusing_the_prompt_is_a_502_with_its_reason(edge_lm, tiny_cloud):
    with make_client(edge_lm, tiny_cloud["url"], model="no-such-model") as c:
        r = ask(c)
    assert r.status_code == 502 and "no-such-model" in r.json()["error"]


def test_cloud_down_gives_a_flagged_edge_answer_quickly(edge_lm):
    with make_client(edge_lm, f"http://127.0.0.1:{free_port()}/v1") as c:  # nothing listens there
        t0 = time.monotonic()
        resp = ask(c, text="what time is it here?").json()
    assert time.monotonic() - t0 < 10
    assert resp["answered_by"] == "edge" and "cloud_unreachable_edge_answer" in resp["flags"]
    assert "Lyon" in resp["answer"]


def test_a_busy_cloud_429_gives_a_flagged_edge_answer_not_an_error(edge_lm):
    """A cloud that is rate-limiting or over its queue cap (429, as `netgpt cloud serve --max-queue` answers): the
    edge answers at once instead of passing the refusal on as a 502. (A stand-in cloud: only its status matters.)"""
    busy = FastAPI()
    busy.post("/v1/chat/completions")(lambda: JSONResponse(status_code=429, headers={"Retry-After": "1"}, content={
        "error": {"message": "busy", "type": "rate_limit_error", "param": None, "code": "server_busy"}}))
    port = free_port()
    web = uvicorn.Server(uvicorn.Config(busy, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=web.run, daemon=True).start()
    while not web.started:
        time.sleep(0.05)
    try:
        with make_client(edge_lm, f"http://127.0.0.1:{port}/v1") as c:
            t0 = time.monotonic()
            r = ask(c, text="what time is it here?")
        assert r.status_code == 200 and time.monotonic() - t0 < 10
        assert r.json()["answered_by"] == "edge" and "cloud_unreachable_edge_answer" in r.json()["flags"]
        assert any("429" in f for f in r.json()["flags"])
    finally:
        web.should_exit = True


def test_a_hanging_cloud_is_cut_off_by_the_timeout(edge_lm):
    """A cloud that accepts the connection and never answers: the request ends after the timeout, flagged."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    try:
        with make_client(edge_lm, f"http://127.0.0.1:{listener.getsockname()[1]}/v1", timeout_s=1.5) as c:
            t0 = time.monotonic()
            resp = ask(c).json()
            elapsed = time.monotonic() - t0
    finally:
        listener.close()
    assert 1.4 <= elapsed < 10, elapsed
    assert resp["answered_by"] == "edge" and "cloud_unreachable_edge_answer" in resp["flags"]


def test_each_request_publishes_its_demand_with_the_users_address(edge_lm, tiny_cloud, redis_server, redis_client):
    with make_client(edge_lm, tiny_cloud["url"], model=tiny_cloud["model"], redis_port=redis_server["port"]) as c:
        assert ask(c, text="give me a route to the old town", mode="edge-only").status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not redis_client.xlen(bus.Streams.FORECASTS):
            time.sleep(0.1)
        health = c.get("/health").json()
    intents = [m for _, m in bus.read_range(redis_client, bus.Streams.USER_INTENTS)]
    assert len(intents) == 1 and isinstance(intents[0], UserIntent)
    assert intents[0].cell == "c1" and intents[0].service_class.value == "navigation"
    assert intents[0].user_ip == "testclient" and intents[0].source == "edge:mec1"
    forecasts = [m for _, m in bus.read_range(redis_client, bus.Streams.FORECASTS)]
    assert str(forecasts[0].target) == "cell:c1:demand_bps" and forecasts[0].values[0] > 0
    assert health["redis"] == "up" and health["sent"]["intents"] == 1
    assert bus.live_agents(redis_client)["mec1"].cells == ["c1", "c2"]


def test_a_long_prompt_of_multibyte_characters_is_answered_not_a_500(client):
    """The edge LM keeps the end of a long prompt; a cut inside an emoji used to overflow its context (a 500)."""
    r = ask(client, text="x🙂" * 700, mode="edge-only")
    assert r.status_code == 200 and r.json()["answered_by"] == "edge", r.text
