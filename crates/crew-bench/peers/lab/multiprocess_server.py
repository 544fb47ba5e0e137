"""multiprocess_server: a thread per connection, fib computed in a process pool (seed 003)."""

import os
from concurrent.futures import ProcessPoolExecutor
from socket import socket, AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR
from threading import Thread

from _fibproto import announce, exit_on_sigterm, fib, handle, main_guard, parse_args


def fib_server(args, pool):
    sock = socket(AF_INET, SOCK_STREAM)
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    compute = lambda n: pool.submit(fib, n).result()
    pool.submit(fib, 1).result()  # start the workers before saying we listen
    announce(sock)
    while True:
        client, addr = sock.accept()
        Thread(target=handle, args=(client, args, compute), daemon=True).start()


if __name__ == "__main__":
    exit_on_sigterm()
    args = parse_args(__doc__)
    pool = ProcessPoolExecutor(os.cpu_count() or 1)
    try:
        main_guard(lambda: fib_server(args, pool))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
