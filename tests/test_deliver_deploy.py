"""deliver in deploy/: compose service and Kubernetes Deployment agree with the CLI, settings and routes."""

from __future__ import annotations

from pathlib import Path

import yaml

from cxstream.deliver.routes import parse_routes
from cxstream.ops.cli import build_parser
from cxstream.ops.settings import Settings, TopicNames

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def known_env_names() -> set[str]:
    names = {f"CXSTREAM_{name.upper()}" for name in Settings.model_fields if name != "topics"}
    return names | {f"CXSTREAM_TOPIC_{role.upper()}" for role in TopicNames.model_fields}


def check_routes(text: str, secret_envs: set[str], monkeypatch) -> None:
    data = yaml.safe_load(text)
    needed = {e["secret_env"] for e in data["endpoints"] if e.get("secret_env")}
    assert needed <= secret_envs, f"secret_env {needed - secret_envs} not given to the process"
    for name in needed:
        monkeypatch.setenv(name, "test-key")
    parse_routes(data)


def test_compose_deliver_service(monkeypatch):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    deliver = services["deliver"]
    assert build_parser().parse_args(deliver["command"]).func.__name__ == "cmd_deliver"
    env = {k: str(v) for k, v in deliver["environment"].items()}
    settings_env = {k for k in env if k in known_env_names()}
    mounts = {v.split(":")[1]: v.split(":")[0] for v in deliver["volumes"]}
    routes_file = DEPLOY / mounts[env["CXSTREAM_ROUTES"]]
    check_routes(routes_file.read_text(), set(env) - settings_env, monkeypatch)
    assert f"127.0.0.1:{env['CXSTREAM_DELIVER_WEB_PORT']}:{env['CXSTREAM_DELIVER_WEB_PORT']}" in deliver["ports"]
    assert env["CXSTREAM_DELIVER_WEB_PORT"] in " ".join(deliver["healthcheck"]["test"])
    routes = yaml.safe_load(routes_file.read_text())
    hosts = {e["url"].split("/")[2].split(":")[0] for e in routes["endpoints"]}
    assert hosts <= services.keys(), "the compose routes point at compose services"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "cxstream-deliver")
    assert job["static_configs"][0]["targets"] == [f"deliver:{env['CXSTREAM_DELIVER_WEB_PORT']}"]


def test_kubernetes_deliver_deployment(monkeypatch):
    k8s = DEPLOY / "kubernetes"
    deployment = yaml.safe_load((k8s / "deployment-deliver.yaml").read_text())
    routes_map = yaml.safe_load((k8s / "configmap-deliver-routes.yaml").read_text())
    listed = yaml.safe_load((k8s / "kustomization.yaml").read_text())["resources"]
    assert {"deployment-deliver.yaml", "configmap-deliver-routes.yaml"} <= set(listed)
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "deliver", "not selected as a worker"
    container = pod["spec"]["containers"][0]
    assert build_parser().parse_args(container["args"]).func.__name__ == "cmd_deliver"
    env = {e["name"]: e for e in container["env"]}
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert str(port) == env["CXSTREAM_DELIVER_WEB_PORT"]["value"] == pod["metadata"]["annotations"]["prometheus.io/port"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    routes_path = Path(env["CXSTREAM_ROUTES"]["value"])
    assert mounts["routes"] == str(routes_path.parent)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["routes"]["configMap"]["name"] == routes_map["metadata"]["name"]
    secret_envs = {name for name, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})}
    check_routes(routes_map["data"][routes_path.name], secret_envs, monkeypatch)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    unknown = {n for n in env if n.startswith("CXSTREAM_")} - known_env_names() - secret_envs
    assert not unknown, unknown
