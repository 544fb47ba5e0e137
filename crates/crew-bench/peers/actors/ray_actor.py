"""crew bench actors: a counter actor in Ray (a local, 2-CPU Ray instance).

Usage: ray_actor.py blocking|pipelined N. Prints "calls_per_sec p50_us" (p50 "-" when
pipelined)."""
import statistics
import sys
import time

import ray


@ray.remote
class Counter:
    def __init__(self):
        self.value = 0

    def incr(self, n):
        self.value += n
        return self.value


def main(case, n):
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    counter = Counter.remote()
    for _ in range(100):
        ray.get(counter.incr.remote(1))
    if case == "blocking":
        latencies = []
        start = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            ray.get(counter.incr.remote(1))
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        print(f"{n / elapsed} {statistics.median(latencies) * 1e6}")
    else:
        start = time.perf_counter()
        ray.get([counter.incr.remote(1) for _ in range(n)])
        elapsed = time.perf_counter() - start
        print(f"{n / elapsed} -")
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
