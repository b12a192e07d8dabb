# SPDX-License-Identifier: Apache-2.0
"""Time the CIDR core at scale; prints the best of 5 runs, asserts nothing.

Run: .venv/bin/python tests/benchmarks/bench_cidr.py
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit"))
importlib.import_module("conftest")  # links the work tree as ansible_collections.scratch.kubernetes
from ansible_collections.scratch.kubernetes.plugins.module_utils._cidr import plan

SETTINGS = {"cluster_cidr": "10.0.0.0/8", "node_pod_prefix": 24, "service_cidr": "172.16.0.0/24"}
NODES = [{"name": f"node-{i}", "node_ip": f"192.168.{i // 250}.{i % 250 + 1}"} for i in range(5000)]


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _run in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    fresh = best_of(5, lambda: plan(**SETTINGS, nodes=NODES, node_networks=["192.168.0.0/16"]))
    existing = plan(**SETTINGS, nodes=NODES).cidr_map()
    del existing["node-4999"]
    one_new = best_of(5, lambda: plan(**SETTINGS, nodes=NODES, allocations=existing))
    print(f"(a) 5,000 new nodes, /24 blocks of 10.0.0.0/8:   {fresh * 1000:7.1f} ms (best of 5)")
    print(f"(b) 4,999 existing allocations + 1 new node:     {one_new * 1000:7.1f} ms (best of 5)")


if __name__ == "__main__":
    main()
