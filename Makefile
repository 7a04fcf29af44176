# make book: install, execute every notebook on the embedded default (params/$(PARAMS)), build the book.
# make test: install, run the test suite (unit tests, notebooks on params/ci, strict book build).
PY := .venv/bin/python
STAMP := .venv/.installed
PARAMS ?= quick

.PHONY: book notebooks test install clean

$(STAMP): pyproject.toml
	python3 -m venv .venv
	# pip 23.2: later pips refuse the bigbench sdist (its metadata names a file:// URL dependency)
	# even with --no-deps, and bigbench 1.0.0 is the only release on PyPI.
	$(PY) -m pip install -q "pip==23.2.1"
	# The CPU wheel on this disk; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps bigbench==1.0.0
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (jdlib)"
	touch $@

install: $(STAMP)

notebooks: $(STAMP)
	@for nb in $$($(PY) -m jdlib.book); do \
		echo "== $$nb (params/$(PARAMS))"; \
		.venv/bin/papermill --log-level WARNING notebooks/$$nb.ipynb book/$$nb.ipynb -p params $(PARAMS) || exit 1; \
	done

book: notebooks
	.venv/bin/jupyter-book build book/

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf book/_build
