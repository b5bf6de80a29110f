"""Ryu apps, one per concern. ryu-manager loads them by module name (see Settings.ryu_apps)."""
from netgpt.ryu_launcher import patch_eventlet

patch_eventlet()  # so that any controller module also imports outside ryu-manager (tests, tools)
