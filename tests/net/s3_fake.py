"""A real S3 API on 127.0.0.1 for tests: moto's server mode behind a recording proxy.

``MotoS3`` runs moto's threaded server on a free port. ``RecordingProxy`` is an
aiohttp reverse proxy (its own thread and loop) in front of it: it records every
request (method, path, headers) as the server received it, counts the body bytes
it served per object key, and plays scripted faults per key: ``("cut", n)``
sends the full Content-Length, n body bytes, then drops the connection;
``("corrupt",)`` flips bytes in the body (same size); ``("pad", n)`` appends n
bytes (a size mismatch). Each fault is used once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter, defaultdict
from urllib.parse import unquote

from aiohttp import ClientSession, web

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
       "proxy-connection", "te", "trailer", "upgrade"}
FAKE_KEY = "AKIDADLMONTEST0000"
FAKE_SECRET = "adlmon-test-secret-never-printed-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoS3:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "MotoS3":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_SECRET)


class RecordingProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream
        self.requests: list[dict] = []
        self.served: Counter = Counter()  # key -> body bytes sent
        self.gets: Counter = Counter()  # key -> GET requests
        self.faults: dict[str, list[tuple]] = defaultdict(list)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> str:
        self.session = ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self.session.close()
        await self.runner.cleanup()

    @staticmethod
    def key_of(path: str) -> str:
        """Object key of a path-style request ``/<bucket>/<key>``."""
        parts = unquote(path).lstrip("/").split("/", 1)
        return parts[1] if len(parts) == 2 else ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = self.key_of(request.path)
        self.requests.append({"method": request.method, "path": request.path,
                              "query": request.query_string, "headers": dict(request.headers)})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with self.session.request(request.method, self.upstream + request.path_qs,
                                        headers=headers, data=body, allow_redirects=False) as up:
            data = await up.read()
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
            status = up.status
            up_length = up.headers.get("Content-Length", "0")
        fault = ()
        if request.method == "GET" and key and status in (200, 206):
            self.gets[key] += 1
            if self.faults.get(key):
                fault = self.faults[key].pop(0)
        if fault and fault[0] == "corrupt":
            data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
        elif fault and fault[0] == "pad":
            data = data + b"x" * fault[1]
        resp = web.StreamResponse(status=status, headers=out_headers)
        if request.method == "HEAD":  # no body: the length is the object's
            resp.headers["Content-Length"] = up_length
        else:
            resp.content_length = len(data)
        await resp.prepare(request)
        if fault and fault[0] == "cut":
            sent = data[:fault[1]]
            await resp.write(sent)
            self.served[key] += len(sent)
            await asyncio.sleep(0.05)  # let the bytes leave before the connection drops
            request.transport.close()
            return resp
        if request.method == "GET" and key:
            self.served[key] += len(data)
        await resp.write(data)
        await resp.write_eof()
        return resp
