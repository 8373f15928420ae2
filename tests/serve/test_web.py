"""The web page in a real headless Chromium (Debian package) against the running server."""

from __future__ import annotations

import os
import struct
import urllib.parse
from pathlib import Path

import pytest
from cdp import Browser, chromium

pytestmark = [pytest.mark.slow, pytest.mark.integration,
              pytest.mark.skipif(chromium() is None, reason="chromium not installed (make test installs it)")]

QUESTION = "Who built the Gull Point lighthouse?"


def test_page_asks_streams_shows_citation_takes_feedback_and_lists_hot_passages(server, client, tmp_path):
    url = f"{server.url}/?" + urllib.parse.urlencode({"q": QUESTION, "autoask": "1"})
    browser = Browser(url)
    try:
        shown = browser.wait_for("document.body.dataset.state === 'answered' && "
                                 "document.getElementById('answer').textContent", timeout=900)
        assert "Arrol" in shown
        # greedy decoding: the page shows exactly what the API answers
        assert shown == client.post("/v1/ask", json={"question": QUESTION}).json()["answer"]
        box = browser.evaluate("JSON.stringify(document.getElementById('answer').getBoundingClientRect())")
        assert '"height":0' not in box  # rendered, not hidden
        browser.evaluate("document.querySelector('#citations .cite').click()")
        assert "gull_point_lighthouse.html" in browser.evaluate("document.getElementById('passage-where').textContent")
        assert "1871" in browser.evaluate("document.getElementById('passage-text').textContent")
        browser.evaluate("document.getElementById('key').value = 'test-key'; "
                         "document.getElementById('correction').value = 'David Arrol, in 1871'; "
                         "document.getElementById('bad').click()")
        assert "marked bad" in browser.wait_for("document.getElementById('feedback-state').textContent", 60)
        rows = browser.wait_for("document.querySelectorAll('#hot-table tr').length > 1 && "
                                "document.getElementById('hot-table').textContent", 60)
        assert "gull_point_lighthouse.html" in rows
        assert "none yet" in browser.evaluate("document.getElementById('adapter-table').textContent")
        shot = browser.screenshot(Path(os.environ.get("RAG_WEB_SCREENSHOT", tmp_path / "web.png")))
    finally:
        browser.close()
    png = shot.read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and width == 1280 and height > 500 and len(png) > 20_000
