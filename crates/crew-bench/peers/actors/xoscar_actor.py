"""crew bench actors: a counter actor in xoscar (the seed's framework), in a sub-pool process.

Usage: xoscar_actor.py blocking|pipelined N. Prints "calls_per_sec p50_us" (p50 "-" when
pipelined)."""
import asyncio
import statistics
import sys
import time

import xoscar as xo


class Counter(xo.Actor):
    def __init__(self):
        self.value = 0

    def incr(self, n):
        self.value += n
        return self.value


async def main(case, n):
    pool = await xo.create_actor_pool("127.0.0.1", n_process=1)
    async with pool:
        counter = await xo.create_actor(
            Counter,
            address=pool.external_address,
            uid="counter",
            allocate_strategy=xo.allocate_strategy.ProcessIndex(1),
        )
        for _ in range(100):
            await counter.incr(1)
        if case == "blocking":
            latencies = []
            start = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                await counter.incr(1)
                latencies.append(time.perf_counter() - t)
            elapsed = time.perf_counter() - start
            print(f"{n / elapsed} {statistics.median(latencies) * 1e6}")
        else:
            start = time.perf_counter()
            await asyncio.gather(*[counter.incr(1) for _ in range(n)])
            elapsed = time.perf_counter() - start
            print(f"{n / elapsed} -")
        await xo.destroy_actor(counter)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
