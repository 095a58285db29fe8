"""The loopback HTTPS server of bench/http_check.py, in its own process so its CPU is not the probe's.

asyncio on 127.0.0.1 (port 0) with the given certificate (plain HTTP without one, to measure what
TLS costs): every connection gets one answer, `200` with a short body, `--delay-ms` after its
request head arrived, then the connection closes. Prints one JSON line on stdout (`port`, `pid`)
and serves until its stdin closes or `--max-s` has passed.

    python bench/_https_server.py --cert server.pem --key server.key --delay-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay_s)
        writer.write(ANSWER)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
        pass  # a client that hung up or failed its handshake
    finally:
        writer.close()


async def serve(args: argparse.Namespace) -> None:
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    delay_s = args.delay_ms / 1000
    server = await asyncio.start_server(lambda r, w: answer(r, w, delay_s), "127.0.0.1", 0, ssl=context,
                                        backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    async with server:
        await asyncio.wait_for(stdin_closed, args.max_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", help="PEM certificate chain; without it, plain HTTP")
    parser.add_argument("--key")
    parser.add_argument("--delay-ms", type=float, default=50)
    parser.add_argument("--max-s", type=float, default=600, help="stop after this long whatever happens")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except TimeoutError:
        pass


if __name__ == "__main__":
    main()
