# cxstream: the two commands a new user needs are `make demo` and `make test`.
# Both set everything up from nothing (a virtualenv in .venv, the package and
# its pinned dependencies; for the tests also promtool from Debian's
# `prometheus` package) and then run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps kafka-deps demo test bench schemas clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# promtool and the Prometheus server, for the tests of deploy/prometheus;
# Chromium and its WebDriver, for the browser test of the pages (tests/test_ui_browser.py)
system-deps:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus package (promtool)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus >/dev/null; }
	@test -x /usr/bin/chromedriver || { \
	  echo "installing Debian's chromium and chromium-driver (the pages' browser test)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Apache Kafka for the tests that need a real broker (tests/test_apache_kafka_broker.py):
# Debian's default-jdk-headless and maven if java/mvn are missing, then the broker's jars
# (tools/kafka/pom.xml) resolved from Maven Central into ~/.cache/cxstream/kafka-<version>/lib
# (or $CXSTREAM_KAFKA_HOME/lib), once.
kafka-deps:
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || { \
	  echo "installing Debian's default-jdk-headless and maven (the Apache Kafka test broker)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jdk-headless maven >/dev/null; }
	@bash tools/kafka/deps.sh >/dev/null

demo: setup
	$(BIN)/cxstream demo $(ARGS)

# CXSTREAM_REQUIRE_DEPLOY_TOOLS: a missing promtool/hadolint fails the tests instead of skipping them
test: setup system-deps kafka-deps
	CXSTREAM_REQUIRE_DEPLOY_TOOLS=1 $(BIN)/python -m pytest -q $(ARGS)

bench: setup
	$(BIN)/cxstream bench $(ARGS)

schemas: setup
	$(BIN)/python -m cxstream.models.schemas

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
