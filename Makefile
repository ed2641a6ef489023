# Two commands do everything on a fresh machine: `make book` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is installed only when the venv has none. The default is the CPU wheel this project's
# machines keep on local disk; elsewhere pick a build that suits the machine, e.g. `make book TORCH=torch`.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: book test venv clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf _build
