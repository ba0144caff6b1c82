# `make run` serves the API on http://127.0.0.1:8000 (Swagger UI at /docs);
# `make test` runs the tests (on PostgreSQL when TEST_DATABASE_URL is set, else SQLite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint fmt migrate bench fuzz soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Serving needs the runtime dependencies alone (a first `make run` is quick); the tests and
# the linters add the dev extra, which serves `make run` too. Each stamp is remade when the
# project's dependencies change.
RUN_DEPS := $(VENV)/.installed-run
DEV_DEPS := $(VENV)/.installed-dev

# A current pip resolves far faster than the one a new virtual environment comes with.
$(RUN_DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_DEPS)

# HOST and PORT choose where it listens: `make run HOST=0.0.0.0 PORT=8080`.
run: $(RUN_DEPS)
	$(BIN)/hospital-api migrate
	$(BIN)/hospital-api seed-demo --if-empty
	$(BIN)/hospital-api serve --host $(HOST) --port $(PORT)

test: $(DEV_DEPS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_DEPS)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy

fmt: $(DEV_DEPS)
	$(BIN)/ruff check --fix app tests bench
	$(BIN)/ruff format app tests bench

migrate: $(RUN_DEPS)
	$(BIN)/hospital-api migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: ops-test deploy-check e2e

# Slow operations tests: a generated client, the server behind PgBouncer (transaction pooling; with TEST_DATABASE_URL, i.e. on PostgreSQL).
# openapi-python-client 0.27: later releases (0.29.1 seen) reference an unimported `Unset`
# for a request body offered in several content types, as /auth/login/ is (JSON and form).
ops-test: $(DEV_DEPS)
	command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] \
		|| (apt-get update -qq && apt-get install -y -qq pgbouncer)
	$(BIN)/python -m pip install --quiet 'openapi-python-client==0.27.1'
	OPS_SLOW_TESTS=1 $(BIN)/python -m pytest -m slow_ops tests/ops $(PYTEST_ARGS)

# The Kubernetes manifests against the Kubernetes JSON schemas, the compose file against the
# Compose specification's (both tools bundle their schemas: no download).
K8S_VERSIONS ?= 1.30.0 1.37.0
deploy-check: $(DEV_DEPS)
	$(BIN)/python -m pip install --quiet kubernetes-validate check-jsonschema
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	for version in $(K8S_VERSIONS); do \
		$(BIN)/kubernetes-validate --strict --quiet -k $$version deploy/k8s/*.yaml deploy/k8s/*/*.yaml \
			|| exit 1; \
	done
	@echo "deploy/k8s: valid against Kubernetes $(K8S_VERSIONS)"

# Swagger UI and ReDoc in a real browser: Debian's Chromium, driven by Playwright (no browser
# download); the pages load their scripts from the app alone.
e2e: $(DEV_DEPS)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pip install --quiet playwright
	E2E_TESTS=1 $(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# The container image, built with podman and run from its own file system (tests/image).
# Without a registry the base is made from Debian's packages (deploy/image/debian-base.sh,
# about 1.5 min) and kept: its root file system under IMAGE_CACHE and the image in podman's
# storage, each made again only when missing. BASE_IMAGE=python:3.12-slim builds on the
# official image instead. pip in the build trusts the host's certificate authorities.
BASE_IMAGE ?= localhost/debian-python:bookworm
IMAGE ?= localhost/hospital-api:latest
IMAGE_CACHE ?= /var/cache/hospital-api
BASE_ROOTFS := $(IMAGE_CACHE)/debian-python-bookworm.tar
HOST_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
PIP_CA_SECRET = --secret id=pip-ca,src=$(HOST_CA_BUNDLE)
.PHONY: image-tools image-base image image-test

image-tools:
	command -v podman >/dev/null && command -v buildah >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq podman buildah)

image-base: image-tools
	podman image exists $(BASE_IMAGE) || { \
		[ -f $(BASE_ROOTFS) ] || deploy/image/debian-base.sh $(BASE_ROOTFS); \
		podman import --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'ENV=LANG=C.UTF-8' --change 'CMD=["python3"]' $(BASE_ROOTFS) $(BASE_IMAGE); }

image: $(if $(filter localhost/debian-python:%,$(BASE_IMAGE)),image-base,image-tools)
	podman build --isolation chroot --format docker --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		$(if $(wildcard $(HOST_CA_BUNDLE)),$(PIP_CA_SECRET)) -t $(IMAGE) .
	podman image ls $(IMAGE)

# Migrates a throwaway database on the PostgreSQL server of TEST_DATABASE_URL from the image,
# serves, logs in, writes, stops; lists the image's files. Prints the image's size and start time.
image-test: image $(DEV_DEPS)
	IMAGE_TESTS=1 HOSPITAL_IMAGE=$(IMAGE) TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(RELIABILITY_DB)} \
		$(BIN)/python -m pytest tests/image $(PYTEST_ARGS)

# The benchmark (bench/README.md) on the PostgreSQL server of BENCH_SERVER: SIZE=small|large|both,
# REUSE=1 keeps an already seeded database, PROFILE=1 adds py-spy profiles of the hot reads.
SIZE ?= both
BENCH_SERVER ?= postgresql://postgres@127.0.0.1:5432/postgres
bench: $(DEV_DEPS)
	$(if $(PROFILE),$(BIN)/python -m pip install --quiet py-spy)
	$(BIN)/python -m bench.run --size $(SIZE) --server $(BENCH_SERVER) $(if $(REUSE),--reuse) $(if $(PROFILE),--profile) $(if $(QUICK),--quick)

# Reliability suites (tests/reliability, tests/fuzz) on the PostgreSQL server of
# TEST_DATABASE_URL: hostile input, several processes, database faults (a private
# cluster), pool exhaustion, graceful shutdown, and a bounded schema fuzz (FUZZ_EXAMPLES=5).
RELIABILITY_DB ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
.PHONY: reliability fuzz soak
reliability: $(DEV_DEPS)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(RELIABILITY_DB)} \
		$(BIN)/python -m pytest tests/reliability tests/fuzz $(PYTEST_ARGS)

# The schema fuzz, longer: FUZZ_EXAMPLES examples per operation and role, a new seed each run
# (printed with any failure; FUZZ_SEED=... replays it).
FUZZ_EXAMPLES ?= 100
fuzz: $(DEV_DEPS)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(RELIABILITY_DB)} FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)} $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

# SOAK_SECONDS of mixed traffic against two workers; prints throughput and worker memory.
SOAK_SECONDS ?= 60
soak: $(DEV_DEPS)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(RELIABILITY_DB)} SOAK_SECONDS=$(SOAK_SECONDS) \
		$(BIN)/python -m pytest -s tests/reliability/test_soak.py $(PYTEST_ARGS)
