"""A stand-in for an edge agent in controller tests: answers HTTP GET with its node id and heartbeats into Redis.

    python tests/integration/stub_agent.py NODE_ID ADDRESS_IP PORT CELLS(comma) CAPACITY
Redis is reached as Settings says (NETGPT_REDIS_SOCKET on Mininet hosts).
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from netgpt import bus
from netgpt.messages import AgentHeartbeat
from netgpt.settings import get_settings


def main():
    node, ip, port, cells, capacity = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","), float(
        sys.argv[5])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = node.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    s = get_settings()
    r = bus.connect(s)
    while True:
        try:
            bus.write_heartbeat(r, AgentHeartbeat(source=f"edge:{node}", node_id=node, address=f"{ip}:{port}",
                                                  cells=cells, capacity_rps=capacity, load_rps=0.0),
                                ttl_s=3 * s.heartbeat_interval_s)
        except Exception as exc:  # keep serving while Redis is away
            print(f"heartbeat failed: {exc}", flush=True)
        time.sleep(s.heartbeat_interval_s)


if __name__ == "__main__":
    main()
