"""The package: the mechanisms cost torch alone; the toolkit and the chapters load on first use."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import attention_lib as al

ROOT = Path(__file__).resolve().parents[1]

#: What the notebooks' toolkit brings; a training script that only uses a mechanism must load none of it.
HEAVY = ("matplotlib", "ipywidgets", "IPython", "tqdm", "torchinfo", "PIL", "numpy")

PROBE = """
import json, sys
import torch
after_torch = set(sys.modules)
import attention_lib as al
x = torch.randn(1, 64, 8, 8)
for name, entry in al.MECHANISMS.items():
    module = entry.build().eval()
    module(entry.example_input(1))
al.SqueezeExcitation(64)(x).sum().backward()
al.PatchEmbedding(4, 3, 8)(torch.randn(1, 3, 8, 8))
added = sorted(m for m in set(sys.modules) - after_torch if not m.startswith("attention_lib"))
ours = sorted(m for m in sys.modules if m.startswith("attention_lib"))
lazy = al.setup                         # the toolkit is still reachable: loaded now, on first use
print(json.dumps({"added": added, "ours": ours, "setup": callable(lazy),
                  "toolkit_after": "attention_lib.toolkit.environment" in sys.modules}))
"""


def _probe() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mechanisms_load_nothing_beyond_torch_and_the_toolkit_loads_on_first_use():
    result = _probe()             # a fresh interpreter: nothing imported by other tests
    heavy = [m for m in result["added"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"using a mechanism imported {heavy}"
    assert not any(m.startswith(("attention_lib.toolkit.", "attention_lib.chapters")) for m in result["ours"])
    assert result["setup"] and result["toolkit_after"]


def test_the_package_depends_on_torch_alone_and_the_book_extra_brings_the_toolkit():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == ["torch>=2.1"]
    book = {d.split(">")[0].split("=")[0].strip().lower() for d in project["optional-dependencies"]["book"]}
    assert {"matplotlib", "ipywidgets", "torchinfo", "tqdm", "numpy"} <= book


def test_lazy_names_resolve_to_the_toolkit():
    from attention_lib.toolkit import environment, instruments, widgets
    assert al.setup is environment.setup and al.count_flops is instruments.count_flops
    assert al.explorer is widgets.explorer and al.widgets is widgets
    assert "viz" in dir(al) and "SqueezeExcitation" in dir(al)
    try:
        al.no_such_name
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")


def test_every_chapter_module_is_found_and_named_after_its_notebook():
    names = al.chapters.names()
    assert names[0] == "ch00_introduction" and "ch03_squeeze_excitation" in names
    notebooks = {p.stem for p in (ROOT / "notebooks" / "en").glob("*.ipynb")}
    for stem in notebooks:                       # every notebook has its chapter module
        assert f"ch{stem}" in names, stem
    assert al.chapters.load(3).__name__.endswith("ch03_squeeze_excitation")
