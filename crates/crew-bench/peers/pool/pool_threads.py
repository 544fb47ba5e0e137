"""Python peer of `crew bench pool`: ThreadPoolExecutor throughput for tiny tasks.

Usage: python3 pool_threads.py CASE N WORKERS CHUNKSIZE  -> prints tasks/sec
CASE is `submit` (submit N tasks, then every result) or `map` (N items in chunks of CHUNKSIZE:
ThreadPoolExecutor.map ignores chunksize, so the chunks are mapped as tasks, each computing its
items, the same work as the Rust rows).
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def inc(x):
    return x + 1


def main():
    case, n, workers, chunksize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    def inc_chunk(low):
        return [inc(x) for x in range(low, min(low + chunksize, n))]

    with ThreadPoolExecutor(max_workers=workers) as ex:
        ex.submit(inc, 0).result()  # warm up the workers
        start = time.perf_counter()
        if case == "submit":
            futures = [ex.submit(inc, i) for i in range(n)]
            total = sum(f.result() for f in futures)
        else:
            total = sum(sum(chunk) for chunk in ex.map(inc_chunk, range(0, n, chunksize)))
        elapsed = time.perf_counter() - start
    assert total == n * (n + 1) // 2, total
    print(n / elapsed)


if __name__ == "__main__":
    main()
