"""async_server: one asyncio event loop, fib computed inline, so CPU work blocks it (seed 003)."""

import asyncio

from _fibproto import exit_on_sigterm, fib, main_guard, parse_args, requests


async def handle(reader, writer, args):
    buffer = bytearray()
    try:
        while True:
            data = await reader.read(4096)
            if not data:
                break
            out = []
            fatal = False
            for n, error, fatal in requests(data, buffer, args.framing, args.max_n):
                out.append(f"error: {error}\n" if error else f"{fib(n)}\n")
                if fatal:
                    break
            if out:
                writer.write("".join(out).encode())
                await writer.drain()
            if fatal:
                writer.write_eof()
                try:
                    await asyncio.wait_for(reader.read(65536), 0.2)
                except asyncio.TimeoutError:
                    pass
                break
    except OSError:
        pass
    finally:
        writer.close()


async def fib_server(args):
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args), args.host, args.port, reuse_address=True
    )
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    exit_on_sigterm()
    args = parse_args(__doc__)
    main_guard(lambda: asyncio.run(fib_server(args)))
