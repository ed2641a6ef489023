# Two commands do everything on a fresh machine: `make book` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is installed only when the venv has none. The default is the CPU wheel this project's
# machines keep on local disk; elsewhere pick a build that suits the machine, e.g. `make book TORCH=torch`.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

SITE   := _build/html

.PHONY: book test unit site-test venv notebook-filter clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP) notebook-filter

# git stores the notebooks without outputs (.gitattributes names this filter): run a chapter in JupyterLab, save,
# and `git status` stays clean; the tests read the notebooks as git stores them.
notebook-filter:
	@test -d .git -o -f .git || exit 0; \
	want='$(PY) tools/editions.py --clean %f'; \
	test "$$(git config --get filter.attention-notebook.clean)" = "$$want" || \
	    git config filter.attention-notebook.clean "$$want"

# Strict: a failing cell, anything a cell writes to stderr (warnings, missing glyphs) or a broken
# reference fails the build. ATTENTION_BOOK_STATIC=1 makes the explorers render static HTML/JS viewers.
# MathJax, require.js and the widget manager are vendored from npm first: the site loads no CDN.
# Notebooks are cached by their code cells; book/cache.py re-executes a chapter's two notebooks when its
# module attention_lib/chapters/chNN_*.py changed, and every notebook when the rest of attention_lib did.
book: $(STAMP)
	$(PY) book/vendor.py
	@# matplotlib builds its font cache on first import and says so on stderr: do it here, not in a cell.
	@# A cache shared with another environment may lack matplotlib's own fonts (written while that one's
	@# files were being removed): every mathtext figure would then warn on stderr. Rebuild such a cache.
	$(PY) -c "import matplotlib.font_manager as fm; fm.findfont('STIXGeneral', fallback_to_default=False)" \
	    2>/dev/null || { rm -f "$$($(PY) -c 'import matplotlib; print(matplotlib.get_cachedir())')"/fontlist-*.json; \
	    $(PY) -c "import matplotlib.font_manager" 2>/dev/null; }
	@extra=$$($(PY) book/cache.py prepare) && set -x && \
	    ATTENTION_BOOK_STATIC=1 $(VENV)/bin/jupyter-book build . -W -n --keep-going $$extra
	$(PY) book/cache.py record
	@echo "site: $(SITE)/index.html"

# Unit tests and notebook hygiene, then the strict build, then the site in headless Chromium
# (ATTENTION_BOOK_REQUIRE_SITE=1: a missing site or browser is a failure, not a skip).
test: $(STAMP)
	$(MAKE) unit
	$(MAKE) book
	$(MAKE) site-test

unit: $(STAMP)
	$(PY) -m pytest -q --ignore=tests/test_book_site.py --ignore=tests/test_classroom_site.py --ignore=tests/test_zh_site.py

# The classroom site test runs every student notebook of the archives (a few minutes, demos cached by the build).
site-test: $(STAMP)
	ATTENTION_BOOK_REQUIRE_SITE=1 $(PY) -m pytest -q tests/test_book_site.py tests/test_classroom_site.py tests/test_zh_site.py

clean:
	rm -rf _build
