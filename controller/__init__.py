"""The Ryu controller: apps, one per concern, that ryu-manager loads by module name (Settings.ryu_apps), started by
`python -m netgpt.controller.ryu_launcher`. Apps talk to the rest of NetGPT only through Redis (netgpt.core.bus)."""
import eventlet.wsgi


def patch_eventlet() -> None:
    """eventlet >= 0.31 dropped `eventlet.wsgi.ALREADY_HANDLED`, which `ryu/app/wsgi.py` imports; any sentinel works.
    Done here, before any controller module imports Ryu, so they also import outside ryu-manager (tests, tools)."""
    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()


patch_eventlet()
