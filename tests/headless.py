"""Headless Chromium driven over the DevTools protocol (a websocket on 127.0.0.1): device
emulation (a real phone width; the plain ``--window-size`` stops at 500 px), the console's
errors, the DOM after the page's scripts ran, full-page screenshots. Bounded waits only."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
from pathlib import Path

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """``async with Browser(tmp) as b: page = await b.open(url, width, height)``."""

    def __init__(self, profile: Path):
        self.profile = profile
        self.proc = None
        self.http = None
        self.port = None

    async def __aenter__(self) -> "Browser":
        self.proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        async with asyncio.timeout(30):
            while True:
                line = (await self.proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("chromium exited before its DevTools endpoint was up")
                if "DevTools listening on ws://" in line:
                    self.port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
                    break
        asyncio.get_running_loop().create_task(self._drain())
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def _drain(self) -> None:
        while self.proc.returncode is None and await self.proc.stderr.readline():
            pass

    async def __aexit__(self, *exc) -> None:
        await self.http.close()
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def open(self, url: str, width: int, height: int, *, mobile: bool = False,
                   ready: str = "document.body && document.body.dataset.charts",
                   timeout_s: float = 30) -> "Page":
        async with self.http.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as r:
            target = await r.json()
        page = Page(await self.http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0))
        await page.start()
        await page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=mobile)
        await page.call("Page.navigate", url=url)
        async with asyncio.timeout(timeout_s):  # until the page says it has drawn (or failed)
            while not await page.eval(ready):
                await asyncio.sleep(0.1)
        return page


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.errors: list[str] = []  # console errors, uncaught exceptions, failed loads, CSP
        self.reader = None

    async def start(self) -> None:
        self.reader = asyncio.get_running_loop().create_task(self._read())
        for domain in ("Runtime", "Log", "Page"):
            await self.call(f"{domain}.enable")

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                fut = self.pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert", "warning"):
                self.errors.append(" ".join(str(a.get("value", a.get("description")))
                                            for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                self.errors.append(params["entry"].get("text", "") + " " + params["entry"].get("url", ""))

    async def call(self, method: str, **params):
        i = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        await self.ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
        res = await asyncio.wait_for(fut, 30)
        if "error" in res:
            raise RuntimeError(f"{method}: {res['error']}")
        return res["result"]

    async def eval(self, expr: str):
        res = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expr}: {res['exceptionDetails']}")
        return res["result"].get("value")

    async def dom(self) -> str:
        return await self.eval("document.documentElement.outerHTML")

    async def screenshot(self, path: Path) -> bytes:
        """The whole page at the emulated width."""
        metrics = await self.call("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                               clip={"x": 0, "y": 0, "width": size["width"],
                                     "height": size["height"], "scale": 1})
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        return data

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
