"""Python peer of `crew bench pool`: process pools (ProcessPoolExecutor, multiprocessing.Pool).

Usage: python3 pool_processes.py KIND CASE N WORKERS CHUNKSIZE  -> prints tasks/sec
KIND is `executor` (concurrent.futures.ProcessPoolExecutor) or `mp` (multiprocessing.Pool);
CASE is `submit` (submit N tasks, then every result) or `map` (map over N items in chunks).
CASE `latency` (executor only; the last argument is then the warm-up count): N tasks one at a
time, each submitted when the last result is back -> prints tasks/sec, p50 and p99 in µs.
CASE `cpu-gcd-python` / `cpu-is_prime-python` (KIND also `serial`): N CPU-bound tasks (the seed's
slow gcd, is_prime) on inputs scaled so that a task takes about as long in CPython as crew's
does in Rust; the pools are used as a user would (`ex.map(f, inputs)`, `pool.map(f, inputs)`,
their default chunk sizes) -> prints tasks/sec.
"""
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def inc(x):
    return x + 1


def slow_gcd(pair):
    a, b = pair
    for i in range(min(a, b), 0, -1):
        if a % i == 0 and b % i == 0:
            return i
    return 1


def is_prime(n):
    if n % 2 == 0:
        return False
    return all(n % i for i in range(3, math.isqrt(n) + 1, 2))


# crew's inputs scaled (CPython is ~60x slower here): gcd numbers / 20; is_prime: the next prime
# after p / 1024 (sqrt: 32x fewer steps), the composite one with factors near its factors / 32.
GCD_INPUTS = [(98165, 113298), (101533, 190708), (77582, 111481), (101952, 101040)]
PRIME_INPUTS = [109641147557, 109944048791, 109641147557, 112578217979, 113083836013, 1073992842799]


def cpu(kind, case, n, workers):
    if case == "cpu-gcd-python":
        f, inputs = slow_gcd, GCD_INPUTS
    else:
        f, inputs = is_prime, PRIME_INPUTS
    inputs = [inputs[i % len(inputs)] for i in range(n)]
    if kind == "serial":
        start = time.perf_counter()
        for x in inputs:
            f(x)
        return n / (time.perf_counter() - start)
    if kind == "executor":
        with ProcessPoolExecutor(max_workers=workers) as ex:
            list(ex.map(inc, range(workers * 4)))  # start and warm up the workers
            start = time.perf_counter()
            list(ex.map(f, inputs))
            return n / (time.perf_counter() - start)
    with multiprocessing.Pool(workers) as pool:
        pool.map(inc, range(workers * 4))
        start = time.perf_counter()
        pool.map(f, inputs)
        return n / (time.perf_counter() - start)


def percentile(sorted_samples, per_cent):
    return sorted_samples[min(len(sorted_samples) * per_cent // 100, len(sorted_samples) - 1)]


def latency(n, workers, warm_up):
    with ProcessPoolExecutor(max_workers=workers) as ex:
        list(ex.map(inc, range(workers * 4)))  # start every worker
        for i in range(warm_up):
            assert ex.submit(inc, i).result() == i + 1
        micros = []
        start = time.perf_counter()
        for i in range(n):
            sent = time.perf_counter()
            result = ex.submit(inc, i).result()
            micros.append((time.perf_counter() - sent) * 1e6)
            assert result == i + 1
        elapsed = time.perf_counter() - start
    micros.sort()
    print(n / elapsed, percentile(micros, 50), percentile(micros, 99))


def main():
    kind, case = sys.argv[1], sys.argv[2]
    if case == "latency":
        latency(int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    n, workers, chunksize = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    if case.startswith("cpu-"):
        print(cpu(kind, case, n, workers))
        return
    if kind == "executor":
        with ProcessPoolExecutor(max_workers=workers) as ex:
            list(ex.map(inc, range(workers * 4)))  # start and warm up the workers
            start = time.perf_counter()
            if case == "submit":
                futures = [ex.submit(inc, i) for i in range(n)]
                total = sum(f.result() for f in futures)
            else:
                total = sum(ex.map(inc, range(n), chunksize=chunksize))
            elapsed = time.perf_counter() - start
    else:
        with multiprocessing.Pool(workers) as pool:
            pool.map(inc, range(workers * 4))  # start and warm up the workers
            start = time.perf_counter()
            if case == "submit":
                results = [pool.apply_async(inc, (i,)) for i in range(n)]
                total = sum(r.get() for r in results)
            else:
                total = sum(pool.map(inc, range(n), chunksize=chunksize))
            elapsed = time.perf_counter() - start
    assert total == n * (n + 1) // 2, total
    print(n / elapsed)


if __name__ == "__main__":
    main()
