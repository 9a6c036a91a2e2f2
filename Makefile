# The two set-up commands of the README.  Each installs what is missing (idempotent).
SHELL := /bin/bash
VENV  ?= .venv
NP    ?= 2
MPIRUN_FLAGS := --oversubscribe $(if $(filter 0,$(shell id -u)),--allow-run-as-root,)
# pip installs the tested versions of constraints.txt (make XASMPI_CONSTRAINTS= ... to drop them)
export XASMPI_CONSTRAINTS ?= $(CURDIR)/constraints.txt

.PHONY: demo test test-fast bench setup clean-venv

setup:
	bash scripts/bootstrap.sh

demo: setup
	mpirun $(MPIRUN_FLAGS) -n $(NP) $(VENV)/bin/xasmpi demo

test:
	bash scripts/bootstrap.sh --test
	$(VENV)/bin/python -m pytest -q -ra tests

test-fast:
	$(VENV)/bin/python -m pytest -q -ra -m "not mpi and not slow and not fdmnes" tests

bench: setup
	$(VENV)/bin/python benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
