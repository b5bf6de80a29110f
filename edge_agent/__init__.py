"""The agent on each MEC node.

    agent.py       the HTTP service (FastAPI): POST /v1/prompt, /v1/cells, /health
    agent_bus.py   heartbeats and per-request demand to Redis, never blocking a request
    collab/        one prompt through the collaboration modes: completion with location facts, the edge LM, the cloud
    location/      each cell's real geography and points of interest; the fact checker
    forecast/      traffic forecasting: methods, backtests, the online loop (telemetry in, Forecast messages out)
    user_intent/   a prompt -> the service it leads to and its expected demand; per-cell demand forecasts
"""
