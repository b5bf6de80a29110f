"""Start ryu-manager on Python 3.11 without editing site-packages.

eventlet >= 0.31 dropped `eventlet.wsgi.ALREADY_HANDLED`, which `ryu/app/wsgi.py` imports at start-up; any sentinel
works, so set one before Ryu is imported. Usage: python -m netgpt.ryu_launcher [ryu-manager arguments] app.module ...
"""
import sys


def patch_eventlet() -> None:
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()


def main(argv: list[str] | None = None) -> None:
    patch_eventlet()
    from ryu.cmd import manager

    sys.argv = ["ryu-manager", *(sys.argv[1:] if argv is None else argv)]
    manager.main()


if __name__ == "__main__":
    main()
