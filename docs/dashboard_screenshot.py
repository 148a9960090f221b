#!/usr/bin/env python
"""Screenshot a Dask dashboard page with headless Chromium, after its Bokeh plots have drawn.

``chromium --screenshot`` captures the page at its load event, before the
dashboard's plots arrive over their websocket; this drives Chromium through
its DevTools protocol instead (tornado's websocket client, which Dask
already installs), waits, and captures.

    python docs/dashboard_screenshot.py http://127.0.0.1:8787/status docs/figures/batch-dashboard.png --wait 8
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import time
import urllib.request


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("png")
    parser.add_argument("--wait", type=float, default=8.0, help="seconds to let the plots draw (default 8)")
    parser.add_argument("--size", default="1600,1000", help="window width,height (default 1600,1000)")
    parser.add_argument("--port", type=int, default=9333, help="DevTools port (default 9333)")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("no chromium on PATH (apt-get install -y chromium)")
    width, height = (int(v) for v in args.size.split(","))
    chrome = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars", f"--window-size={width},{height}", f"--remote-debugging-port={args.port}",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{args.port}/json", timeout=2))
                page = next(t for t in targets if t.get("type") == "page")
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        else:
            sys.exit("chromium's DevTools did not answer")
        png = _capture(page["webSocketDebuggerUrl"], args.url, args.wait, width, height)
    finally:
        chrome.terminate()
        chrome.wait(timeout=30)
    with open(args.png, "wb") as out:
        out.write(png)
    print(f"wrote {args.png} ({len(png)} bytes)")


def _capture(ws_url, url, wait, width, height) -> bytes:
    from tornado.ioloop import IOLoop
    from tornado.websocket import websocket_connect

    async def run():
        ws = await websocket_connect(ws_url, max_message_size=256 * 2**20)
        counter = iter(range(1, 10**6))

        async def call(method, **params):
            ident = next(counter)
            ws.write_message(json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.read_message())
                if message.get("id") == ident:
                    return message.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                   mobile=False)
        await call("Page.enable")
        await call("Page.navigate", url=url)
        import asyncio

        await asyncio.sleep(wait)
        result = await call("Page.captureScreenshot", format="png")
        ws.close()
        return base64.b64decode(result["data"])

    return IOLoop.current().run_sync(run)


if __name__ == "__main__":
    main()
