# `make demo`: set up .venv and run the embedded FiGKD study (CPU, minutes).
# `make test`: set up .venv and run the test suite.
# `make check-wheel`: build the wheel and check it, with mim, in a clean venv
#   (/tmp/figkd_wheel_venv; about 6 GB and a few minutes; not part of CI).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: requirements.txt requirements-test.txt setup.py \
		figkd_mmrazor_hook.pth
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-test.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

.PHONY: setup test demo check-wheel
setup: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

demo: $(VENV)/.installed
	$(PY) tools/demo_study.py

check-wheel: $(VENV)/.installed
	BUILD_PY=$(PY) tools/check_wheel.sh
