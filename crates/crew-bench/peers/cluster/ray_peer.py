"""Python peer of `crew bench cluster`: Ray tasks on a local Ray instance with two CPUs.

`ray.init(num_cpus=2)` starts a local cluster; one item per task is one `square.remote(n)`, a
chunk one `square_chunk.remote(chunk)`. Speaks the protocol of `_cluster_proto.py`.
"""
import ray

from _cluster_proto import serve


def square(n):
    return n * n


def square_chunk(chunk):
    return [n * n for n in chunk]


def main():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    remote_square = ray.remote(square)
    remote_chunk = ray.remote(square_chunk)

    def submit(items):
        return ray.get([remote_square.remote(n) for n in items])

    def map_chunks(chunks):
        return ray.get([remote_chunk.remote(chunk) for chunk in chunks])

    def one(n):
        return ray.get(remote_square.remote(n))

    submit(range(200))  # warm up: worker processes started
    try:
        serve(submit, map_chunks, one)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
