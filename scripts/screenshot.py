#!/usr/bin/env python3
"""Takes the README's dashboard screenshot: a running server (started with
`--demo`), a token, and chromedriver from Debian's chromium-driver.

    scripts/screenshot.py http://127.0.0.1:8000 "$TOKEN" docs/img/dashboard.png [view] [width]

view is alerts (default), forecast or admin. Uses only the standard library:
WebDriver is JSON over HTTP.
"""
import base64, json, socket, subprocess, sys, time, urllib.request

base, token, out = sys.argv[1], sys.argv[2], sys.argv[3]
view = sys.argv[4] if len(sys.argv) > 4 else "alerts"
width = int(sys.argv[5]) if len(sys.argv) > 5 else 1280

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wd = f"http://127.0.0.1:{port}"


def call(method, path, body=None):
    req = urllib.request.Request(wd + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["value"]


try:
    for _ in range(100):
        try:
            call("GET", "/status")
            break
        except OSError:
            time.sleep(0.05)
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},860"]}}}}
    sid = call("POST", "/session", caps)["sessionId"]
    s = f"/session/{sid}"
    call("POST", f"{s}/url", {"url": base + "/"})
    call("POST", f"{s}/execute/sync", {"script": "sessionStorage.setItem('alertkit.token', arguments[0])", "args": [token]})
    call("POST", f"{s}/url", {"url": base + "/"})
    time.sleep(2)
    if view != "alerts":
        call("POST", f"{s}/execute/sync", {"script": f"document.querySelector('#tab-{view}').click()", "args": []})
        time.sleep(2)
    png = base64.b64decode(call("GET", f"{s}/screenshot"))
    with open(out, "wb") as f:
        f.write(png)
    call("DELETE", s)
finally:
    driver.kill()
