"""The protocol every Python peer of `crew bench cluster` speaks on its standard streams.

A peer starts its cluster (and warms it up), prints `ready`, then answers each line
`CASE N CHUNKSIZE` of its standard input with one JSON line
`{"tasks_per_sec": ..., "p50_us": ... | null, "p99_us": ... | null}`, until end of input, when it
stops its cluster and exits. Keeping the cluster up between rounds measures the tasks, not the
start of Ray or Dask (seconds), the same way crew's cluster is started once.

CASE is `submit` (N tasks of one item each, then every result), `map` (N items in tasks of
CHUNKSIZE items) or `latency` (N tasks one at a time, each result awaited before the next submit).
The task is the same everywhere: n -> n * n (seed 004's task, without its `sleep(1)`).
"""
import json
import sys
import time


def sum_of_squares(n):
    """0^2 + 1^2 + ... + (n-1)^2: every result is checked."""
    return (n - 1) * n * (2 * n - 1) // 6


def serve(submit, map_chunks, one):
    """Answers the benchmark's requests with the peer's three ways of running the task.

    submit(items) -> results, map_chunks(list of lists) -> list of lists, one(n) -> n * n.
    """
    print("ready", flush=True)
    for line in sys.stdin:
        case, n, chunksize = line.split()
        n, chunksize = int(n), int(chunksize)
        p50 = p99 = None
        if case == "submit":
            start = time.perf_counter()
            total = sum(submit(range(n)))
            elapsed = time.perf_counter() - start
        elif case == "map":
            start = time.perf_counter()
            chunks = [list(range(low, min(low + chunksize, n))) for low in range(0, n, chunksize)]
            total = sum(sum(chunk) for chunk in map_chunks(chunks))
            elapsed = time.perf_counter() - start
        elif case == "latency":
            samples = []
            total = 0
            start = time.perf_counter()
            for i in range(n):
                sent = time.perf_counter()
                total += one(i)
                samples.append((time.perf_counter() - sent) * 1e6)
            elapsed = time.perf_counter() - start
            samples.sort()
            p50 = samples[len(samples) // 2]
            p99 = samples[min(len(samples) - 1, len(samples) * 99 // 100)]
        else:
            raise SystemExit(f"unknown case {case!r}: use submit, map or latency")
        if total != sum_of_squares(n):
            raise SystemExit(f"{case}: wrong results (sum {total}, expected {sum_of_squares(n)})")
        print(json.dumps({"tasks_per_sec": n / elapsed, "p50_us": p50, "p99_us": p99}), flush=True)
