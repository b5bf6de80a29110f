"""The bottom layer, shared by every process: `settings` (one typed Settings object, NETGPT_* overrides), `messages`
(every message that crosses a process, versioned pydantic models) and `bus` (Redis stream and key names, reading and
writing them, consumer groups). Nothing here imports any other part of netgpt."""
