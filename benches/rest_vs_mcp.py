#!/usr/bin/env python3
"""Same tool call, two faces of one mcp-orch: `/mcp` (rmcp's Streamable HTTP server, session
worker, SSE answer) and the REST face `POST /tools/{server}.{tool}` (straight to the router).

If the two p50s match, the latency a call adds is not made in rmcp's server-side machinery
but in what both share (process wake-ups on the way to the downstream and back). One
keep-alive connection each, sequential calls, alternating rounds, loopback only.

    benches/rest_vs_mcp.py [--orch target/release/mcp-orch] [--calls 2000] [--rounds 3]
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orch", default=os.path.join(ROOT, "target/release/mcp-orch"))
    ap.add_argument("--fixture", default=os.path.join(ROOT, "target/release/mcp-orch-fixture"))
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    config = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"mcpServers": {"fx": {"command": args.fixture, "args": ["--stdio"]}}}, config)
    config.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PROXY_PORT", "RUST_LOG")}
    proc = subprocess.Popen(
        [args.orch, "--mcp-config", config.name, "--port", str(port), "--no-stdio"],
        stderr=subprocess.DEVNULL, env=env)
    try:
        conn = None
        for _ in range(100):  # up to 10 s for the listener
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/health")
                conn.getresponse().read()
                break
            except OSError:
                conn = None
                time.sleep(0.1)
        if conn is None:
            sys.exit("rest_vs_mcp: mcp-orch did not listen")

        def post(path, body, headers):
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response, response.read()

        mcp = {"Content-Type": "application/json",
               "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "rest_vs_mcp", "version": "0"}}}
        response, _ = post("/mcp", json.dumps(init), mcp)
        mcp["Mcp-Session-Id"] = response.getheader("mcp-session-id") or ""
        post("/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), mcp)

        def over_mcp(n):
            times = []
            for i in range(n):
                body = json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                                   "params": {"name": "fx__echo", "arguments": {"text": "hi"}}})
                start = time.perf_counter()
                _, data = post("/mcp", body, mcp)
                times.append(time.perf_counter() - start)
                if b'"hi"' not in data:
                    sys.exit(f"rest_vs_mcp: unexpected /mcp answer {data[:200]!r}")
            return statistics.median(times) * 1e6

        def over_rest(n):
            times = []
            for _ in range(n):
                start = time.perf_counter()
                _, data = post("/tools/fx.echo", '{"text":"hi"}', {"Content-Type": "application/json"})
                times.append(time.perf_counter() - start)
                if b"hi" not in data:
                    sys.exit(f"rest_vs_mcp: unexpected REST answer {data[:200]!r}")
            return statistics.median(times) * 1e6

        over_mcp(200), over_rest(200)  # warm-up
        for r in range(args.rounds):
            order = [("mcp", over_mcp), ("rest", over_rest)]
            if r % 2:
                order.reverse()
            result = {name: round(run(args.calls), 1) for name, run in order}
            print(json.dumps({"round": r + 1, "calls": args.calls,
                              "mcp_p50_us": result["mcp"], "rest_p50_us": result["rest"]}))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.unlink(config.name)


if __name__ == "__main__":
    main()
