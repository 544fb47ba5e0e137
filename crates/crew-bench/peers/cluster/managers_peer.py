"""Python peer of `crew bench cluster`: seed 004's master/worker on `multiprocessing.managers`.

The master (this process) exposes a task queue and a result queue on the network with an authkey
(`QueueManager`, as in the seed's task_master.py) and starts two workers, each a separate process
that connects over TCP as the seed's task_worker.py does and loops: get a task, put its result.
A task is one number (one item per task) or a list of numbers (a chunk). Speaks the protocol of
`_cluster_proto.py`; run as `python3 managers_peer.py`.
"""
import os
import queue
import secrets
import subprocess
import sys
from multiprocessing.managers import BaseManager

from _cluster_proto import serve

WORKERS = 2


class QueueManager(BaseManager):
    pass


def worker(host, port):
    """The seed's task_worker.py, looping until it gets `None`."""
    QueueManager.register("get_task_queue")
    QueueManager.register("get_result_queue")
    # The authkey comes from the environment, never the command line (visible to `ps`).
    m = QueueManager(address=(host, int(port)), authkey=bytes.fromhex(os.environ["CREW_AUTHKEY"]))
    m.connect()
    task, result = m.get_task_queue(), m.get_result_queue()
    while True:
        n = task.get()
        if n is None:
            return
        result.put([x * x for x in n] if isinstance(n, list) else n * n)


def master():
    task_queue, result_queue = queue.Queue(), queue.Queue()
    QueueManager.register("get_task_queue", callable=lambda: task_queue)
    QueueManager.register("get_result_queue", callable=lambda: result_queue)
    authkey = secrets.token_bytes(16)
    manager = QueueManager(address=("127.0.0.1", 0), authkey=authkey)
    manager.start()
    host, port = manager.address
    env = dict(os.environ, CREW_AUTHKEY=authkey.hex())
    workers = [
        subprocess.Popen([sys.executable, __file__, "worker", host, str(port)], env=env)
        for _ in range(WORKERS)
    ]
    task, result = manager.get_task_queue(), manager.get_result_queue()

    def submit(items):
        count = 0
        for n in items:
            task.put(n)
            count += 1
        return [result.get() for _ in range(count)]

    def map_chunks(chunks):
        for chunk in chunks:
            task.put(chunk)
        return [result.get() for _ in chunks]

    def one(n):
        task.put(n)
        return result.get()

    submit(range(100))  # warm up: both workers connected and serving
    try:
        serve(submit, map_chunks, one)
    finally:
        for _ in workers:
            task.put(None)
        for w in workers:
            w.wait(timeout=10)
        manager.shutdown()


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2], sys.argv[3])
    else:
        master()
