"""What the README and the teacher's guide tell a student to run works as written: JupyterLab opens a chapter.

The set-up the README names (``make venv``, or ``pip install -r requirements.txt``) installs JupyterLab;
this test runs the README's command (``jupyter lab --notebook-dir=. notebooks/en/00_introduction.ipynb``, from the
repository's root as the README says, on a free local port, with a token and no browser), waits for the server,
asks it for the target of every link of every notebook (the twins, the other chapters, the book's pages: a link
JupyterLab cannot serve does nothing when clicked), opens chapter 03 through the server's API, starts the
notebook's kernel and runs the chapter's set-up and import cells in it, and checks in a real JupyterLab that the
solutions open collapsed and the notebook opens unmodified. The student edition gets the same command, from the
folder where both archives are unpacked, as their README says. Everything is bounded in time and the servers are
stopped at the end.
"""
from __future__ import annotations

import io
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

import importlib.util
import re
import zipfile
from urllib.parse import quote

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: the command of the README, the running page, the teacher's guide and the archives' README, word for word
COMMAND = "jupyter lab --notebook-dir=. notebooks/{lang}/00_introduction.ipynb"
CHAPTER = "notebooks/en/03_squeeze_excitation.ipynb"
DEADLINE = 120.0          # seconds for the whole test
_spec = importlib.util.spec_from_file_location("editions", ROOT / "tools" / "editions.py")
editions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(editions)


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
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert COMMAND.format(lang="en") in text or COMMAND.format(lang="zh") in text, f"{doc} does not name {COMMAND}"
        assert not re.search(r"jupyter lab (?!--notebook-dir=\. )\S*notebooks/", text), \
            f"{doc} roots JupyterLab inside notebooks/, where the links to the twins and the book's pages break"
    for lang in ("en", "zh"):
        assert COMMAND.format(lang=lang) in editions.README[lang].format(lang=lang)


def _start(cwd: Path, lang: str = "en"):
    jupyter = BIN / "jupyter"
    if not jupyter.exists():
        pytest.fail(f"{jupyter} not found: requirements.txt must install jupyterlab")
    port, token = _free_port(), secrets.token_hex(16)
    words = COMMAND.format(lang=lang).split()
    argv = [str(jupyter), *words[1:], "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(ROOT / "_build" / "jupyterlab-test.log", "w") if (ROOT / "_build").is_dir() else subprocess.DEVNULL
    if hasattr(os, "geteuid") and os.geteuid() == 0:   # containers and CI run as root; a student does not
        argv.append("--allow-root")
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
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
    except BaseException:
        _stop(process)
        raise
    return process, base, token, start


@pytest.fixture(scope="module")
def lab():
    process, base, token, start = _start(ROOT)
    try:
        yield base, token, start
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """Both student archives unpacked into one folder, and JupyterLab started there as their README says."""
    folder = tmp_path_factory.mktemp("student")
    for lang in ("en", "zh"):
        with zipfile.ZipFile(io.BytesIO(editions.archive_bytes(lang))) as zf:
            zf.extractall(folder)
    process, base, token, start = _start(folder, "zh")
    try:
        yield folder, base, token
    finally:
        _stop(process)


def _served_links(folder: Path, base: str, token: str) -> int:
    """Ask the server for the target of every relative link of every notebook under ``folder``; returns how many."""
    checked = 0
    for path in sorted([*folder.glob("notebooks/*/*.ipynb"), *folder.glob("book/*/*.ipynb")]):
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            served = (path.parent / target.split("#")[0]).resolve()
            assert folder.resolve() in served.parents, f"{path.relative_to(folder)}: {target} leaves the server's root"
            rel = served.relative_to(folder.resolve()).as_posix()
            try:
                status, _ = _get(f"{base}/api/contents/{quote(rel)}?content=0", token)
            except urllib.error.HTTPError as error:
                status = error.code
            assert status == 200, f"{path.relative_to(folder)}: JupyterLab cannot open {target} ({status})"
            checked += 1
    return checked


def test_every_link_of_every_notebook_opens_from_the_root_the_readme_gives(lab):
    base, token, _ = lab
    assert _served_links(ROOT, base, token) > 100


def test_every_link_of_the_student_edition_opens_from_the_root_its_readme_gives(student_lab):
    folder, base, token = student_lab
    assert _served_links(folder, base, token) > 50


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
    stored = model["content"]["metadata"]["kernelspec"]
    assert stored["name"] in specs["kernelspecs"], f"the chapter's kernel {stored['name']!r} is not installed: {specs}"
    # JupyterLab writes the kernel's own name into the notebook when the kernel starts: the same name, no change
    assert stored["display_name"] == specs["kernelspecs"][stored["name"]]["spec"]["display_name"]


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
