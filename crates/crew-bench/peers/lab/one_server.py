"""one_server: one thread serves one client at a time; the next one waits (seed 003)."""

from socket import socket, AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR

from _fibproto import announce, exit_on_sigterm, fib, handle, main_guard, parse_args


def fib_server(args):
    sock = socket(AF_INET, SOCK_STREAM)
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    announce(sock)
    while True:
        client, addr = sock.accept()
        handle(client, args, fib)


if __name__ == "__main__":
    exit_on_sigterm()
    args = parse_args(__doc__)
    main_guard(lambda: fib_server(args))
