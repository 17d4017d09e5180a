"""What a refused 1 MB `/v1/check` body costs, against a valid 1 MB body, in one run.

Each body goes through the app in process (falcon's test client: parse, validate, answer or
refuse, decision log off), repeated, and the median is reported with its ratio to the
valid body. The issue's bound: a hostile 1 MB body costs a few times a valid one, no more.

    .venv/bin/python -m bench.hostile_bodies
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import falcon.testing

from rolebook.api.app import build_services, create_app
from rolebook.api.auth import mint
from rolebook.api.config import Config

ROOT = Path(__file__).resolve().parents[1]


def bodies() -> dict[str, bytes]:
    attr = {f"note{i}": "x" * 1000 for i in range(10)}
    valid = {"principal": {"id": "svc", "role": "edit"}, "resources": [
        {"kind": "account", "id": str(i), "actions": ["read"], "attr": attr}
        for i in range(95)]}
    deep = "[" * 1000 + "]" * 1000
    return {
        "valid, 95 resources with 10 KB of facts each": valid,
        "500,000 wrong items": {"principal": {"id": "svc"}, "resources": [1] * 500_000},
        "25,000 well-formed resources": {"principal": {"id": "svc"}, "resources": [
            {"kind": "account", "actions": ["read"]}] * 25_000},
        "80,000 unexpected keys": {"principal": {"id": "svc", **{
            f"k{i:06}": 1 for i in range(80_000)}}, "resources": [
            {"kind": "account", "actions": ["read"]}]},
        "1,000 levels deep (small)": ('{"principal":{"id":"svc","role":"edit"},"resources":'
                                      f'[{{"kind":"account","actions":["read"],"attr":{{"x":{deep}'
                                      '}}]}'),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Config(data_dir=folder, database_url=f"sqlite:///{folder}/db.sqlite",
                        policy_dir=str(ROOT / "policies"), jwt_secret="bench-" + "x" * 32,
                        decision_log="off")
        services = build_services(config)
        client = falcon.testing.TestClient(create_app(config, services))
        headers = {"Authorization": f"Bearer {mint(config, 'svc', 'svc@example.com', 'check')}",
                   "Content-Type": "application/json"}
        base = None
        for name, body in bodies().items():
            raw = body.encode() if isinstance(body, str) else json.dumps(
                body, separators=(",", ":")).encode()
            times, status = [], 0
            for _ in range(15):
                start = time.perf_counter()
                result = client.simulate_post("/v1/check", body=raw, headers=headers)
                times.append(time.perf_counter() - start)
                status = result.status_code
            median = statistics.median(times)
            base = base or median
            print(f"{name:48} {len(raw) / 1e6:5.2f} MB  {status}  {median * 1e3:7.1f} ms"
                  f"  {median / base:5.1f}x  answer {len(result.content):,} B")
        services.store.close()


if __name__ == "__main__":
    main()
