"""Start ryu-manager on Python 3.11 without editing site-packages.

eventlet >= 0.31 dropped `eventlet.wsgi.ALREADY_HANDLED`, which `ryu/app/wsgi.py` imports at start-up; importing this
module imports the `netgpt.controller` package first, which sets a sentinel (patch_eventlet) before Ryu is imported.
Usage: python -m netgpt.controller.ryu_launcher [ryu-manager arguments] app.module ...
"""
import sys

from ryu.cmd import manager


def main(argv: list[str] | None = None) -> None:
    sys.argv = ["ryu-manager", *(sys.argv[1:] if argv is None else argv)]
    manager.main()


if __name__ == "__main__":
    main()
