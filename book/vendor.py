"""Vendor the site's JavaScript from the npm registry, so the published book needs no third-party CDN.

Run before the build (``make book`` does): ``python book/vendor.py``. It fetches three pinned packages with
``npm pack``, unpacks only the files the site loads into ``book/_static/vendor/`` (git-ignored) and writes a
stamp, so a second run with the same pins does nothing.

- MathJax 3 (``mathjax@3``; version 4 has another layout): its loader ``startup.js`` and the components the book
  loads (core, TeX input, CHTML output and fonts, assistive MathML; TeX extensions on demand). The site does not
  load the all-in-one ``tex-chtml.js``: its context menu alone is 426 kB (``book/_ext/reader_site.py`` names the
  components).
- require.js: the AMD loader the ipywidgets HTML manager needs.
- ``@jupyter-widgets/html-manager@1``: ``embed-amd.js`` (bundles ``@jupyter-widgets/base`` and ``controls``)
  and the icon fonts it references; it renders the widget state saved in executed notebooks.

``_config.yml`` points Sphinx (``mathjax_path``) and MyST-NB (``nb_ipywidgets_js``) at these paths.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "_static" / "vendor"
STAMP = VENDOR / "VERSIONS.json"

# package spec -> (folder under vendor/, folder of the package to take files from, predicate on their paths)
PACKAGES = {
    "mathjax@3": ("mathjax", "es5/", lambda p: _keep_mathjax(p)),
    "requirejs@2.3": ("requirejs", "", lambda p: p == "require.js"),
    "@jupyter-widgets/html-manager@1.0": (
        "html-manager", "dist/",
        lambda p: p == "embed-amd.js" or p.endswith((".woff2", ".woff", ".ttf", ".eot", ".svg")),
    ),
}


def _keep_mathjax(p: str) -> bool:
    """The CHTML build of MathJax and what it loads on demand; no SVG output, no all-in-one bundles."""
    if p in ("tex-chtml.js", "startup.js", "core.js", "input/tex.js"):
        return True
    return p.startswith(("input/tex/", "output/chtml", "ui/", "a11y/", "sre/", "adaptors/"))


#: Files the site loads: a stamp without one of them (an older vendoring) is vendored again.
REQUIRED = ("mathjax/startup.js", "mathjax/core.js", "mathjax/input/tex.js", "mathjax/output/chtml.js",
            "requirejs/require.js", "html-manager/embed-amd.js")


def _npm_pack(spec: str, dest: Path) -> tuple[Path, str]:
    """Download one package tarball from the npm registry; return its path and resolved version."""
    out = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out)[0]
    return dest / info["filename"], info["version"]


def vendor(force: bool = False) -> dict[str, str]:
    if STAMP.exists() and not force:
        stamp = json.loads(STAMP.read_text())
        if (set(stamp) == set(PACKAGES) and all((VENDOR / PACKAGES[s][0]).is_dir() for s in stamp)
                and all((VENDOR / f).is_file() for f in REQUIRED)):
            return stamp
    if shutil.which("npm") is None:
        sys.exit("book/vendor.py: npm is needed to vendor MathJax, require.js and the widget manager "
                 "(install Node.js, e.g. `apt-get install npm`)")
    shutil.rmtree(VENDOR, ignore_errors=True)
    versions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, (folder, prefix, keep) in PACKAGES.items():
            tarball, version = _npm_pack(spec, Path(tmp))
            versions[spec] = version
            target = VENDOR / folder
            with tarfile.open(tarball) as tar:
                for member in tar.getmembers():
                    name = member.name.split("/", 1)[1] if "/" in member.name else ""
                    if not member.isfile() or not name.startswith(prefix) or not keep(name[len(prefix):]):
                        continue
                    name = name[len(prefix):]
                    path = target / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(path, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    STAMP.write_text(json.dumps(versions, indent=2) + "\n")
    return versions


if __name__ == "__main__":
    for spec, version in vendor(force="--force" in sys.argv).items():
        print(f"vendored {spec} -> {version}")
