"""Ryu apps, one per concern. ryu-manager loads them by module name (see Settings.ryu_apps)."""
