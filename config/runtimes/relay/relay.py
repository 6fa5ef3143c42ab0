"""Relay: a unix socket in the bind-mounted folder -> 127.0.0.1:8080 in the shared network namespace.

Runs in a sidecar container started with `--network container:<action>` next to an image that only knows how to
listen on port 8080 (a blackbox image, an official OpenWhisk runtime). The invoker speaks HTTP to the unix socket;
each connection is piped as bytes to the action's port on the namespace's own loopback. The socket is made only
once the action listens there: the invoker waits for the socket, and an /init the relay took before the image
listened was cut while the invoker wrote it (a failed /init for every image slower to listen than the relay is to
start). A connection the action refuses later (it stopped listening) is closed at once. Standard library only.
With WHISK_API_RELAY_SOCKET (the action has no network) it also serves that socket, which the invoker relays to the
API host, on 127.0.0.1:WHISK_API_RELAY_PORT of the namespace, as our proxies do: __OW_API_HOST there names it.
"""

import asyncio
import os
import signal
import socket

SOCKET = os.environ.get("WHISK_RELAY_SOCKET", "/run/whisk/proxy.sock")
PORT = int(os.environ.get("WHISK_RELAY_PORT", "8080"))
API_SOCKET = os.environ.get("WHISK_API_RELAY_SOCKET", "")
API_PORT = int(os.environ.get("WHISK_API_RELAY_PORT", "3233"))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()        # pass the half-close on: the other side may still answer
    except (ConnectionError, OSError):
        writer.close()


async def splice(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, connect) -> None:
    """Pipe one accepted connection both ways to what `connect()` opens; close it at once if that fails."""
    try:
        far_reader, far_writer = await connect()
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(pipe(client_reader, far_writer), pipe(far_reader, client_writer))
    finally:
        far_writer.close()
        client_writer.close()


async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    await splice(client_reader, client_writer, lambda: asyncio.open_connection("127.0.0.1", PORT))


async def to_api_host(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    await splice(client_reader, client_writer, lambda: asyncio.open_unix_connection(API_SOCKET))


async def until_listening() -> None:
    """Return once something accepts connections on the action's port (a connection opened and closed)."""
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", PORT)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return


async def main() -> None:
    api_server = None
    if API_SOCKET:         # before the socket below: the invoker sends the action once that exists
        try:
            api_server = await asyncio.start_server(to_api_host, "127.0.0.1", API_PORT, backlog=64)
        except OSError as exc:      # the image took the port itself: it can still use the socket directly
            print(f"relay: cannot serve the API host on 127.0.0.1:{API_PORT}: {exc}", flush=True)
    await until_listening()
    if os.path.exists(SOCKET):
        os.unlink(SOCKET)
    # Connectable by any user from the moment it exists, by the umask at bind: the invoker takes the folder back as
    # soon as the socket is there, and a chmod afterwards could race that and fail.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mask = os.umask(0o111)
    try:
        sock.bind(SOCKET)
    finally:
        os.umask(mask)
    server = await asyncio.start_unix_server(handle, sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if api_server is not None:
        api_server.close()


if __name__ == "__main__":
    asyncio.run(main())
