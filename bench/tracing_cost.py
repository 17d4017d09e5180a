"""What tracing costs a `/v1/check`: the same requests with OpenTelemetry off and on.

Each mode runs in its own process (the Falcon instrumentation patches the class at start),
in process through falcon's test client, so the figure is the app's own work: parse,
validate, decide, answer, one span per request plus the evaluation span when on. "On"
exports over OTLP/HTTP to a local port where a real HTTP server answers 200, so the
batch exporter runs as in production. Modes alternate; the median of each is reported.

    .venv/bin/python -m bench.tracing_cost
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUESTS, ROUNDS = 3000, 3
BODY = {"principal": {"id": "svc", "role": "edit"}, "resources": [
    {"kind": "member", "id": "bob", "attr": {"target_role": "read", "new_role": "read",
                                             "owner_count": 1, "is_self": False},
     "actions": ["update_role", "remove"]}]}


def measure() -> None:
    """In the child: µs per request, printed as JSON."""
    import falcon.testing  # before the instrumentation replaces falcon.App (not generic)

    from rolebook.api import tracing

    tracing.start()
    from rolebook.api.app import build_services, create_app
    from rolebook.api.auth import mint
    from rolebook.api.config import Config

    with tempfile.TemporaryDirectory() as folder:
        config = Config(data_dir=folder, database_url=f"sqlite:///{folder}/db.sqlite",
                        policy_dir=str(ROOT / "policies"), jwt_secret="bench-" + "x" * 32,
                        decision_log="off", access_log="off")
        services = build_services(config)
        client = falcon.testing.TestClient(create_app(config, services))
        headers = {"Authorization": f"Bearer {mint(config, 'svc', 'svc@x.example', 'check')}"}
        for _ in range(300):
            client.simulate_post("/v1/check", json=BODY, headers=headers)
        start = time.perf_counter()
        for _ in range(REQUESTS):
            assert client.simulate_post("/v1/check", json=BODY, headers=headers).status_code == 200
        print(json.dumps((time.perf_counter() - start) / REQUESTS * 1e6))
        tracing.stop()
        services.store.close()


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    modes = {"off": {}, "on": {"OTEL_EXPORTER_OTLP_ENDPOINT":
                               f"http://127.0.0.1:{sink.server_address[1]}"}}
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for _ in range(ROUNDS):
        for mode, env in modes.items():
            out = subprocess.run([sys.executable, "-m", "bench.tracing_cost", "--child"],
                                 env={**base, **env}, cwd=ROOT, capture_output=True, text=True,
                                 check=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    sink.shutdown()
    off, on = (statistics.median(results[m]) for m in ("off", "on"))
    print(f"/v1/check in process, {REQUESTS} requests x {ROUNDS} rounds per mode:")
    print(f"  tracing off: {off:7.1f} us per request  (runs: {results['off']})")
    print(f"  tracing on:  {on:7.1f} us per request  (runs: {results['on']})")
    print(f"  cost of tracing: {on - off:+.1f} us per request ({on / off:.2f}x)")


if __name__ == "__main__":
    measure() if "--child" in sys.argv else main()
