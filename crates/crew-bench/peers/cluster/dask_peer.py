"""Python peer of `crew bench cluster`: Dask distributed on `LocalCluster(n_workers=2)`.

Two worker processes of one thread each; one item per task is one task of `client.map`, a chunk
one task of `client.map` over the chunks; one task at a time is `client.submit(...).result()`.
`pure=False` keeps Dask from reusing a result of an earlier round. Speaks the protocol of
`_cluster_proto.py`.
"""
import logging

from dask.distributed import Client, LocalCluster

from _cluster_proto import serve


def square(n):
    return n * n


def square_chunk(chunk):
    return [n * n for n in chunk]


def main():
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:

        def submit(items):
            return client.gather(client.map(square, list(items), pure=False))

        def map_chunks(chunks):
            return client.gather(client.map(square_chunk, chunks, pure=False))

        def one(n):
            return client.submit(square, n, pure=False).result()

        submit(range(200))  # warm up
        serve(submit, map_chunks, one)


if __name__ == "__main__":
    main()
