"""What the README and the teacher's guide tell a student to run works as written: JupyterLab opens a chapter.

The set-up the README names (``make venv``, or ``pip install -r requirements.txt``) installs JupyterLab;
this test runs the README's command (``jupyter lab notebooks/en/``, from the same environment, on a free
local port, with a token and no browser), waits for the server, opens chapter 03 through the server's
API, starts the notebook's kernel and runs the chapter's set-up and import cells in it. Everything is
bounded in time and the server is stopped at the end.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: the command of the README and of the teacher's guide, word for word
COMMAND = "jupyter lab notebooks/en/"
CHAPTER = "03_squeeze_excitation.ipynb"
DEADLINE = 120.0          # seconds for the whole test


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str, data=None, method=None, timeout=10.0):
    request = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                                     method=method, headers={"Authorization": f"token {token}",
                                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
        return response.status, body


def test_the_readme_and_the_guide_give_the_command_this_test_runs():
    for doc in ("README.md", "book/en/running.md", "book/zh/running.md", "book/en/teaching.md", "book/zh/teaching.md"):
        path = ROOT / doc
        if path.exists():
            assert "jupyter lab notebooks/" in path.read_text(encoding="utf-8"), f"{doc} does not name the command"


@pytest.fixture(scope="module")
def lab():
    jupyter = BIN / "jupyter"
    if not jupyter.exists():
        pytest.fail(f"{jupyter} not found: requirements.txt must install jupyterlab")
    port, token = _free_port(), secrets.token_hex(16)
    words = COMMAND.split()
    argv = [str(jupyter), *words[1:], "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(ROOT / "_build" / "jupyterlab-test.log", "w") if (ROOT / "_build").is_dir() else subprocess.DEVNULL
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # containers and CI run as root; a student does not
        argv.append("--allow-root")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"`{COMMAND}` exited with code {process.returncode}")
            try:
                if _get(f"{base}/api/status", token, timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() - start > 60:
                pytest.fail(f"`{COMMAND}` did not answer within 60 s")
            time.sleep(0.5)
        yield base, token, start
    finally:
        _stop(process)


def _stop(process):
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)      # the server and the kernels it started
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_jupyterlab_serves_its_interface_and_the_chapter(lab):
    base, token, _ = lab
    status, html = _get(f"{base}/lab/tree/{CHAPTER}", token)
    assert status == 200 and b"JupyterLab" in html
    status, body = _get(f"{base}/api/contents/{CHAPTER}", token)
    model = json.loads(body)
    assert model["type"] == "notebook" and model["content"]["cells"], "the chapter did not open"
    status, body = _get(f"{base}/api/kernelspecs", token)
    specs = json.loads(body)
    kernel = model["content"]["metadata"]["kernelspec"]["name"]
    assert kernel in specs["kernelspecs"], f"the chapter's kernel {kernel!r} is not installed: {specs}"


def test_the_chapters_kernel_runs_its_first_cells(lab):
    websocket = pytest.importorskip("websocket")   # websocket-client, installed with jupyterlab
    base, token, start = lab
    _, body = _get(f"{base}/api/contents/{CHAPTER}", token)
    cells = [c["source"] for c in json.loads(body)["content"]["cells"] if c["cell_type"] == "code"][:2]
    _, body = _get(f"{base}/api/sessions", token, method="POST",
                   data={"path": CHAPTER, "type": "notebook", "kernel": {"name": "python3"}})
    kernel_id = json.loads(body)["kernel"]["id"]
    ws = websocket.create_connection(f"ws://{base[len('http://'):]}/api/kernels/{kernel_id}/channels?token={token}",
                                     timeout=DEADLINE)
    try:
        for source in cells:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                           "msg_type": "execute_request", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": source, "silent": False, "store_history": True,
                            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
            while True:
                assert time.monotonic() - start < DEADLINE, "the kernel did not finish in time"
                reply = json.loads(ws.recv())
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if reply["msg_type"] == "error":
                    pytest.fail(f"cell failed in JupyterLab's kernel: {reply['content']['ename']}: "
                                f"{reply['content']['evalue']}\n{source}")
                if reply["msg_type"] == "execute_reply":
                    assert reply["content"]["status"] == "ok", reply["content"]
                    break
    finally:
        ws.close()


def test_the_chapters_solutions_open_collapsed_in_jupyterlab(lab):
    """In a real JupyterLab (headless Chromium), each solution cell shows as one line: its title."""
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"{chromium} not found")
    playwright_sync = pytest.importorskip("playwright.sync_api")
    base, token, start = lab
    _, body = _get(f"{base}/api/contents/{CHAPTER}", token)
    solutions = sum("solution" in c["metadata"].get("tags", []) for c in json.loads(body)["content"]["cells"])
    assert solutions, "chapter 03 has no solution cell"
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            placeholders = page.locator(".jp-Notebook .jp-InputPlaceholder")
            while placeholders.count() < solutions and time.monotonic() - start < DEADLINE:
                # JupyterLab renders the cells near the view only: scroll to the end, where the exercises are
                page.locator(".jp-WindowedPanel-outer").first.evaluate("e => e.scrollTop = e.scrollHeight")
                page.wait_for_timeout(300)
            titles = [placeholders.nth(i).inner_text() for i in range(placeholders.count())]
        finally:
            browser.close()
    assert titles.count("# @title Solution · 参考答案") == solutions, f"collapsed inputs: {titles}"
