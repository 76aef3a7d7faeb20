"""Reference receiver: asyncio streams, written the way the docs suggest.

A reader task per connection (``await reader.readline()``), a line printed
and flushed per message, ``send <id> <message>`` from stdin with
``writer.write`` + ``await writer.drain()``. It exists only to measure against.
"""

from __future__ import annotations

import asyncio
import socket
import sys


async def main(port: int) -> None:
    writers = {}
    out = sys.stdout.buffer

    async def client(reader, writer):
        writers[len(writers) + 1] = writer
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            line = await reader.readline()
            if not line:
                break
            out.write(line)
            out.flush()
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", port, limit=65536, backlog=1024)
    out.write(b"listening on 127.0.0.1:%d\n" % server.sockets[0].getsockname()[1])
    out.flush()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=65536)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while True:
        line = await stdin.readline()
        if not line:
            break
        parts = line.rstrip(b"\n").split(b" ", 2)
        if len(parts) == 3 and parts[0] == b"send" and int(parts[1]) in writers:
            w = writers[int(parts[1])]
            w.write(parts[2] + b"\n")
            await w.drain()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
