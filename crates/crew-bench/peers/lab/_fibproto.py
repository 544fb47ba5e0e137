"""Shared by the Python peers: fib, the protocol and the command line (stdlib only).

The protocol is crew's: a decimal n and a newline in, fib(n) and a newline out; bad input gets a
line starting with "error:" and the connection stays open; a line over 64 bytes gets an error
and the connection closes. With --framing talk each read is one request, as in the talk.
"""

import argparse
from socket import SHUT_WR
import signal
import sys

MAX_LINE = 64


def fib(n):
    if n <= 2:
        return 1
    else:
        return fib(n - 1) + fib(n - 2)


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--addr", default="127.0.0.1:25000")
    parser.add_argument("--framing", choices=["line", "talk"], default="line")
    parser.add_argument("--max-n", type=int, default=40)
    args = parser.parse_args()
    host, _, port = args.addr.rpartition(":")
    args.host, args.port = host or "127.0.0.1", int(port)
    return args


def announce(sock):
    host, port = sock.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)


def exit_on_sigterm():
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def parse(raw, max_n):
    """(n, None) for a request, (None, message) for bad input."""
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        return None, "not a number: the request is not UTF-8 text"
    if not text:
        return None, "empty request: send a number n such as `25`"
    digits = text[1:] if text.startswith("+") else text
    if digits.startswith("-") and digits[1:].isdigit():
        return None, f"negative n {text}: n must be between 0 and {max_n}"
    if not (digits.isascii() and digits.isdigit()):
        return None, f"not a number: {text[:24]!r}; send a decimal n between 0 and {max_n}"
    n = int(digits)
    if n > max_n:
        return None, f"n {digits[:24]} above the maximum {max_n} (fib(n) must be exact and finish)"
    return n, None


def requests(data, buffer, framing, max_n):
    """Decodes what one read returned: yields (n, error, fatal); keeps partial lines in buffer."""
    if framing == "talk":
        if len(data) > MAX_LINE:
            yield None, f"request longer than {MAX_LINE} bytes", True
        else:
            n, error = parse(data, max_n)
            yield n, error, False
        return
    buffer.extend(data)
    while True:
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > MAX_LINE + 1:
                yield None, f"line longer than {MAX_LINE} bytes", True
            return
        line = bytes(buffer[:end]).rstrip(b"\r")
        del buffer[: end + 1]
        if len(line) > MAX_LINE:
            yield None, f"line longer than {MAX_LINE} bytes", True
            return
        n, error = parse(line, max_n)
        yield n, error, False


def handle(sock, args, compute):
    """Serves one blocking connection until the client leaves."""
    buffer = bytearray()
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            out = []
            fatal = False
            for n, error, fatal in requests(data, buffer, args.framing, args.max_n):
                out.append(f"error: {error}\n" if error else f"{compute(n)}\n")
                if fatal:
                    break
            if out:
                sock.sendall("".join(out).encode())
            if fatal:
                linger_close(sock)
                break
    except OSError:
        pass
    finally:
        sock.close()


def linger_close(sock):
    """After a final error line: stop writing and drain the client for a moment, so closing
    with unread input does not reset the connection before the line arrives."""
    try:
        sock.shutdown(SHUT_WR)
        sock.settimeout(0.2)
        for _ in range(64):
            if not sock.recv(1024):
                break
    except OSError:
        pass


def main_guard(run):
    try:
        run()
    except KeyboardInterrupt:
        pass
    sys.exit(0)
