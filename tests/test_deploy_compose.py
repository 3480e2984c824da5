"""deploy/compose.yaml: structure and cross-references (no Docker engine needed).

Services, images and builds, Kafka in KRaft mode reachable in the network,
cxstream settings known and valid, commands the CLI accepts, mounted files
present, the Prometheus targets and Grafana mounts agreeing with the services.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import yaml

from cxstream.ops.cli import build_parser
from cxstream.ops.settings import Settings, TopicNames, bootstrap_servers

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CXSTREAM_IMAGE = "cxstream:local"
IMAGE_DATA_DIR = "/var/lib/cxstream"  # the Dockerfile's CXSTREAM_DATA_DIR and VOLUME


def known_env_names() -> set[str]:
    names = {f"CXSTREAM_{name.upper()}" for name in Settings.model_fields if name != "topics"}
    names |= {f"CXSTREAM_TOPIC_{role.upper()}" for role in TopicNames.model_fields}
    return names


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def cxstream_services(services) -> dict[str, dict]:
    return {name: s for name, s in services.items() if s.get("image") == CXSTREAM_IMAGE}


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_the_stack_has_every_part(services):
    assert {"kafka", "topics", "worker-1", "worker-2", "simulator", "prometheus", "grafana"} <= services.keys()
    assert set(cxstream_services(services)) == {"topics", "worker-1", "worker-2", "simulator"}


def test_every_service_has_a_pinned_image_or_a_build(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            build = service["build"]
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: no Dockerfile"
        else:
            image = service["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and tag and tag != "latest", f"{name}: pin the image tag ({image})"


def test_kafka_runs_in_kraft_mode_for_the_network(services):
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env), "KRaft: no ZooKeeper"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "a base64 UUID (kafka-storage random-uuid)"
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node}@kafka:")
    listeners = {item.split("://")[0]: item.split("://")[1] for item in env["KAFKA_LISTENERS"].split(",")}
    protocol_map = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocol_map)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    for name, address in advertised.items():
        host, port = address.rsplit(":", 1)
        assert host == "kafka", f"listener {name} must be advertised under the service name, not {host}"
        assert listeners[name].endswith(f":{port}")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1", "one node"
    assert "healthcheck" in kafka


def test_cxstream_env_names_are_settings_and_valid(services, monkeypatch):
    known = known_env_names()
    kafka_advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    advertised = {item.split("://")[1] for item in kafka_advertised.split(",")}
    for name, service in cxstream_services(services).items():
        env = environment(service)
        unknown = sorted(set(env) - known)
        assert not unknown, f"{name}: unknown settings {unknown}"
        assert set(bootstrap_servers(env["CXSTREAM_BROKER"]).split(",")) <= advertised, name
        for key in list(os.environ):
            if key.startswith("CXSTREAM_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        Settings()  # every value is valid


def test_cxstream_commands_are_what_the_cli_accepts(services):
    parser = build_parser()
    commands = {}
    for name, service in cxstream_services(services).items():
        command = service.get("command", ["worker"])
        args = parser.parse_args(command)
        commands[name] = command
        assert getattr(args, "func", None), f"{name}: {command} is not a cxstream command"
    assert commands["topics"] == ["topics", "create"]
    assert commands["worker-1"] == commands["worker-2"] == ["worker"]
    assert commands["simulator"][0] == "simulate" and "--rate" in commands["simulator"]


def test_startup_order(services):
    topics = services["topics"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["restart"] == "no"
    for worker in ("worker-1", "worker-2"):
        service = services[worker]
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert environment(service)["CXSTREAM_CREATE_TOPICS"] == "false", "the topics job creates them"
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    for name in ("topics", "simulator"):
        assert services[name]["healthcheck"] == {"disable": True}, \
            f"{name} is not a web server: the image's HEALTHCHECK does not apply"


def test_workers_keep_state_on_their_own_volumes(compose, services):
    assert f"CXSTREAM_DATA_DIR={IMAGE_DATA_DIR}" in (ROOT / "Dockerfile").read_text()
    declared = set(compose.get("volumes") or {})
    mounts = []
    for worker in ("worker-1", "worker-2"):
        env = environment(services[worker])
        data_dir = env.get("CXSTREAM_DATA_DIR", IMAGE_DATA_DIR)
        volumes = [v.split(":") for v in services[worker]["volumes"]]
        state = [source for source, target, *_ in volumes if target == data_dir]
        assert len(state) == 1 and state[0] in declared, worker
        mounts.append(state[0])
    assert mounts[0] != mounts[1]


def test_mounted_files_exist_and_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: mounted {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def test_host_ports_are_loopback_and_distinct(services):
    seen = set()
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip, host_port, _ = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name}: publish on loopback only ({port})"
            assert host_port not in seen, f"host port {host_port} published twice"
            seen.add(host_port)


def test_prometheus_scrapes_both_workers_and_loads_the_rules(services):
    prometheus = services["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    config_flag = next(f for f in prometheus["command"] if f.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    config = yaml.safe_load((DEPLOY / mounts[config_path]).read_text())
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_path).parent / rule_file)
        assert in_container in mounts, f"rule file {rule_file} is not mounted next to the config"
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "cxstream")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = set()
    for worker in ("worker-1", "worker-2"):
        port = environment(services[worker]).get("CXSTREAM_WEB_PORT", "6066")
        expected.add(f"{worker}:{port}")
    assert targets == expected
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_grafana_gets_the_provisioning_and_the_dashboard(services):
    grafana = services["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/cxstream.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert path in mounts, "the dashboard provider's path is mounted"
    assert (DEPLOY / mounts[path] / "cxstream.json").is_file()
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    url = datasources["datasources"][0]["url"]
    assert url == "http://prometheus:9090" and "prometheus" in services
    home = environment(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home is None or home.startswith(path + "/")
