"""What one hand-off between two processes costs on this machine, on one core and across two.

    python -m bench.hop [--trips 5000]

Two processes bounce one byte over a socket pair, each waiting in ``recv`` as an idle
event loop waits in ``epoll``; it prints the round trip with both on the same CPU and on
different CPUs. A server that hands each post to a second process (a writer process)
pays two of these hops per batch of posts, and the second process only earns its keep
where the hops are cheap next to the work it takes off the first core.
"""

from __future__ import annotations

import argparse
import os
import socket
import time


def round_trip(trips: int, ours: int, theirs: int) -> float:
    """Mean round trip in µs, this process on CPU ``ours``, the echoing one on ``theirs``."""
    left, right = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echo
        left.close()
        os.sched_setaffinity(0, {theirs})
        while data := right.recv(1):
            right.send(data)
        os._exit(0)
    right.close()
    os.sched_setaffinity(0, {ours})
    for _ in range(100):  # both awake and placed before timing
        left.send(b"x")
        left.recv(1)
    started = time.perf_counter()
    for _ in range(trips):
        left.send(b"x")
        left.recv(1)
    elapsed = time.perf_counter() - started
    left.close()
    os.waitpid(pid, 0)
    return elapsed / trips * 1e6


def main() -> None:
    """Print the round trip on one CPU and across two."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trips", type=int, default=5000)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("bench.hop needs two CPUs to compare one core with two.")
    same = round_trip(args.trips, cpus[-1], cpus[-1])
    across = round_trip(args.trips, cpus[0], cpus[-1])
    print(f"round trip between two processes, {args.trips:,} trips:")
    print(f"  same CPU ({cpus[-1]}):            {same:7.1f} µs")
    print(f"  different CPUs ({cpus[0]} and {cpus[-1]}): {across:7.1f} µs")


if __name__ == "__main__":
    main()
