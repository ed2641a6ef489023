"""The published site as its readers get it: page weight, axe-core and Lighthouse, page by page.

    .venv/bin/python -m benchmarks.site                  # weights and axe (light and dark) of every page
    .venv/bin/python -m benchmarks.site --lighthouse     # + Lighthouse (mobile) on the landing page, a chapter, the guide
    .venv/bin/python -m benchmarks.site --lighthouse --pages --runs 5 --reports /tmp/lh   # Lighthouse only, 5 runs each
    .venv/bin/python -m benchmarks.site --pages book/index.html notebooks/en/01_self_attention.html

Reads the built site (``_build/html``, ``make book``), serves it on loopback with Python's
``http.server`` (no compression, no cache headers: the bytes are what a host that compresses
nothing would send; ``--gzip`` serves text gzip-compressed, as GitHub Pages and most hosts do, and is the
default with ``--lighthouse`` unless ``--identity``) and loads each page cold in headless Chromium. Lighthouse (npm ``lighthouse``, fetched into the npm cache
of ``tests/browser.py`` when missing) is a benchmark, not a test: its scores move with the machine's
load (simulated throttling multiplies the CPU time it observes, so each run prints the load average; read the
medians of ``--runs``). The deterministic limits (bytes, axe, alt text, keyboard) are tests in ``tests/test_book_site.py``.
Results go to ``benchmarks/site.json`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.browser import chromium, npm_package, page_weight, run_axe, serve, typeset_all

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
OUT = ROOT / "benchmarks" / "site.json"
LIGHTHOUSE = "lighthouse@12.8.2"
LIGHTHOUSE_PAGES = ["book/index.html", "notebooks/en/01_self_attention.html", "notebooks/zh/01_self_attention.html",
                    "book/en/teaching.html"]
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]


def pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if "_static" not in p.parts and "reports" not in p.parts and p.stat().st_size > 2000
                  and p.name != "genindex.html")


def axe_both_schemes(browser, url: str) -> dict:
    out = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        typeset_all(page)
        violations = run_axe(page)
        out[scheme] = {v["id"]: len(v["nodes"]) for v in violations}
        out[scheme + "_examples"] = {v["id"]: v["nodes"][:2] for v in violations}
        context.close()
    return out


#: The audits that explain a performance score (each one's displayed value and score is kept per run).
DIAGNOSTICS = ("render-blocking-resources", "bootup-time", "mainthread-work-breakdown", "unused-css-rules",
               "unused-javascript", "total-byte-weight", "dom-size", "layout-shifts", "long-tasks",
               "largest-contentful-paint-element", "font-display", "uses-text-compression")


def lighthouse(url: str, keep: Path | None = None) -> dict:
    """Lighthouse's default (mobile, simulated throttling) scores and metrics for one page.

    ``keep``: also write the full JSON report there (to read its audits and trace-derived tables)."""
    npm_package(LIGHTHOUSE)   # checks npm is there; the CLI needs its dependencies, so install it properly:
    prefix = Path(npm_package(LIGHTHOUSE)).parent / "lighthouse-cli"
    cli = prefix / "node_modules" / "lighthouse" / "cli" / "index.js"
    if not cli.exists():
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", LIGHTHOUSE],
                       check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "CHROME_PATH": os.environ.get("CHROMIUM", "/usr/bin/chromium")}
        subprocess.run(["node", str(cli), url, "--quiet", "--output=json", f"--output-path={report}",
                        "--only-categories=" + ",".join(CATEGORIES),
                        "--chrome-flags=--headless=new --no-sandbox --disable-gpu"],
                       check=True, env=env, capture_output=True, timeout=600)
        data = json.loads(report.read_text())
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text(report.read_text())
    audits = data["audits"]
    failing = sorted(k for k, a in audits.items()
                     if a.get("score") is not None and a["score"] < 0.9 and a.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings"))
    return {"scores": {c: round(100 * data["categories"][c]["score"]) for c in CATEGORIES},
            "metrics": {k: audits[k].get("displayValue") for k in
                        ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
                         "cumulative-layout-shift", "speed-index", "total-byte-weight", "dom-size")},
            "diagnostics": {k: {"score": audits[k].get("score"), "value": audits[k].get("displayValue")}
                            for k in DIAGNOSTICS if k in audits},
            "failing": failing}


def median_of_runs(runs: list[dict]) -> dict:
    """Median score per category (and the run-by-run scores) over repeated Lighthouse runs of one page."""
    import statistics
    return {c: {"median": statistics.median(r["scores"][c] for r in runs), "runs": [r["scores"][c] for r in runs]}
            for c in CATEGORIES}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", type=Path, default=SITE)
    ap.add_argument("--pages", nargs="*", help="pages relative to the site (default: every page)")
    ap.add_argument("--lighthouse", action="store_true", help="also run Lighthouse on " + ", ".join(LIGHTHOUSE_PAGES))
    ap.add_argument("--lighthouse-pages", nargs="*", default=LIGHTHOUSE_PAGES, help="pages Lighthouse runs on")
    ap.add_argument("--no-axe", action="store_true")
    ap.add_argument("--gzip", action="store_true", help="serve text gzip-compressed, as most hosts do (the default "
                    "with --lighthouse: scores are measured as a reader of GitHub Pages gets the site)")
    ap.add_argument("--identity", action="store_true", help="serve uncompressed even with --lighthouse")
    ap.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page (medians are reported)")
    ap.add_argument("--reports", type=Path, help="keep each full Lighthouse JSON report in this folder")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not (args.site / "index.html").exists():
        sys.exit(f"no built site in {args.site}: run `make book` first")
    rels = args.pages if args.pages is not None else pages(args.site)
    gzip = (args.gzip or args.lighthouse) and not args.identity
    results: dict = {"server": "gzip" if gzip else "identity", "pages": {}, "lighthouse": {}}
    print(f"serving {args.site} with {'gzip' if gzip else 'no'} compression (load average {os.getloadavg()})")
    with serve(args.site, gzip=gzip) as url, chromium(require=True) as browser:
        print(f"{'page':46} {'KiB':>7} {'req':>4} {'KiB all':>8}  axe light / dark (nodes)")
        for rel in rels:
            first = page_weight(browser, f"{url}/{rel}")
            full = page_weight(browser, f"{url}/{rel}", scroll=True)
            row = {"bytes": first["bytes"], "requests": first["requests"], "bytes_scrolled": full["bytes"],
                   "by_type": first["by_type"], "largest": first["largest"][:5]}
            if not args.no_axe:
                row["axe"] = axe_both_schemes(browser, f"{url}/{rel}")
            results["pages"][rel] = row
            axe = "" if args.no_axe else (f"{sum(row['axe']['light'].values())} {row['axe']['light']} / "
                                           f"{sum(row['axe']['dark'].values())} {row['axe']['dark']}")
            print(f"{rel:46} {first['bytes'] / 1024:7.0f} {first['requests']:4d} {full['bytes'] / 1024:8.0f}  {axe}",
                  flush=True)
        if args.lighthouse:
            for rel in args.lighthouse_pages:
                runs = []
                for i in range(args.runs):
                    keep = args.reports / f"{rel.replace('/', '_')}.{i}.json" if args.reports else None
                    lh = lighthouse(f"{url}/{rel}", keep)
                    lh["load_average"] = os.getloadavg()[0]
                    runs.append(lh)
                    print(f"lighthouse {rel} run {i + 1}: {lh['scores']} {lh['metrics']} "
                          f"(load {lh['load_average']:.1f})\n  failing: {lh['failing']}", flush=True)
                results["lighthouse"][rel] = {"median": median_of_runs(runs), "runs": runs}
                print(f"lighthouse {rel} medians: " + ", ".join(
                    f"{c} {m['median']} {m['runs']}" for c, m in results["lighthouse"][rel]["median"].items()),
                    flush=True)
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
