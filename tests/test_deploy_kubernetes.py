"""deploy/kubernetes: schema validation and cross-references.

Every manifest is validated with ``kubernetes-validate`` (strict: unknown
fields are errors) against recent Kubernetes versions; then the pieces are
checked against each other and against the image and the settings: names the
StatefulSet refers to exist, selectors select the right pods, env names are
settings with valid values, the rules ConfigMap is the shipped rules file.

Tools: PyPI ``kubernetes-validate``. Without it the schema test skips with a
reason (``CXSTREAM_REQUIRE_DEPLOY_TOOLS=1`` makes it fail); the rest runs.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import yaml

from cxstream.domain.rules import load_rules
from cxstream.ops.cli import build_parser
from cxstream.ops.settings import Settings, TopicNames

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
DEFAULT_RULES = ROOT / "cxstream" / "domain" / "default_rules.yaml"
#: Kubernetes versions the manifests must be valid for (a recent one and the newest known).
KUBERNETES_VERSIONS = ("1.33.0",)


def known_env_names() -> set[str]:
    names = {f"CXSTREAM_{name.upper()}" for name in Settings.model_fields if name != "topics"}
    names |= {f"CXSTREAM_TOPIC_{role.upper()}" for role in TopicNames.model_fields}
    return names


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load_all() -> list[tuple[Path, dict]]:
    docs = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict]:
    """(kind, name) -> manifest, examples included."""
    found: dict[tuple[str, str], dict] = {}
    for path, doc in load_all():
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in found, f"{key} defined twice"
        found[key] = doc
    return found


@pytest.fixture(scope="module")
def statefulset(resources) -> dict:
    return resources[("StatefulSet", "cxstream")]


@pytest.fixture(scope="module")
def job(resources) -> dict:
    return resources[("Job", "cxstream-topics")]


def pod_specs(resources) -> dict[str, dict]:
    return {f"{kind}/{name}": doc["spec"]["template"]["spec"]
            for (kind, name), doc in resources.items() if kind in ("StatefulSet", "Job")}


# ------------------------------------------------------------------- schemas
def test_manifests_are_valid_kubernetes_objects_strict():
    try:
        import kubernetes_validate
    except ImportError:
        message = "kubernetes-validate is not installed (pip install kubernetes-validate)"
        if os.environ.get("CXSTREAM_REQUIRE_DEPLOY_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    versions = sorted({*KUBERNETES_VERSIONS, kubernetes_validate.latest_version()})
    docs = load_all()
    assert len(docs) >= 9
    for version in versions:
        for path, doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']} on {version}: "
                            f"{error.message} at {'.'.join(map(str, error.path))}")


def test_strict_validation_catches_a_misspelt_field():
    """Guard for the test above: strict mode does reject unknown fields."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    doc = yaml.safe_load((K8S / "statefulset.yaml").read_text())
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True  # capital S: not a field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[0], strict=True)


# ------------------------------------------------------------- kustomization
def test_kustomization_lists_every_manifest_but_the_examples(resources, statefulset):
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization lists missing {name}"
    expected = {p.name for p in manifest_files() if not p.name.endswith(".example.yaml")}
    assert set(listed) == expected
    namespace = resources[("Namespace", kustomization["namespace"])]
    assert namespace["metadata"]["name"] == "cxstream"
    images = {image["name"] for image in kustomization.get("images", [])}
    for spec in pod_specs(resources).values():
        for container in spec["containers"]:
            assert container["image"].split(":")[0] in images, "kustomize can set the image"


def test_secret_is_only_an_example_without_values(resources):
    secrets = [(kind, name) for kind, name in resources if kind == "Secret"]
    assert secrets == [("Secret", "cxstream-kafka")]
    secret_files = [p for p, doc in load_all() if doc["kind"] == "Secret"]
    assert all(p.name.endswith(".example.yaml") for p in secret_files)
    secret = resources[("Secret", "cxstream-kafka")]
    assert "data" not in secret
    assert set(secret["stringData"]) == {"sasl-username", "sasl-password"}
    assert all(re.fullmatch(r"[A-Z-]*REPLACE[A-Z-]*", v) for v in secret["stringData"].values()), \
        "placeholders only"


# ---------------------------------------------------------- cross-references
def test_statefulset_references_exist(resources, statefulset):
    spec = statefulset["spec"]
    service = resources[("Service", spec["serviceName"])]
    assert service["spec"]["clusterIP"] == "None", "serviceName is the headless Service"
    assert resources[("ServiceAccount", spec["template"]["spec"]["serviceAccountName"])]
    for name, pod in pod_specs(resources).items():
        assert ("ServiceAccount", pod["serviceAccountName"]) in resources, name
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in resources, name
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in resources, name
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = resources.get(("Secret", ref["name"]))
                    assert secret is not None, f"{name}: Secret {ref['name']} has no manifest (example)"
                    assert ref["key"] in secret["stringData"], f"{name}: no key {ref['key']}"
                    assert ref.get("optional") is True, "PLAINTEXT clusters run without the Secret"
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            declared = {v["name"] for v in pod.get("volumes", [])}
            if name.startswith("StatefulSet/"):
                declared |= {t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
            assert mounted <= declared, f"{name}: mounts {mounted - declared} are not volumes"


def test_services_and_budget_select_the_workers_only(resources, statefulset, job):
    worker_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()
    selectors = [doc["spec"]["selector"] for (kind, _), doc in resources.items() if kind == "Service"]
    selectors.append(resources[("PodDisruptionBudget", "cxstream")]["spec"]["selector"]["matchLabels"])
    assert len(selectors) == 3
    for selector in selectors:
        assert selector.items() <= worker_labels.items()
        assert not selector.items() <= job_labels.items(), "the topics Job's pod is no endpoint"
    ports = {p["name"]: p["containerPort"] for p in statefulset["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for (kind, name), doc in resources.items():
        if kind == "Service":
            for port in doc["spec"]["ports"]:
                assert port["targetPort"] in ports, f"Service {name} targets unknown port {port['targetPort']}"
    assert {doc["spec"].get("clusterIP") for (kind, _), doc in resources.items() if kind == "Service"} == {None, "None"}


def test_env_names_are_settings_with_valid_values(resources, monkeypatch):
    known = known_env_names()
    config = resources[("ConfigMap", "cxstream-env")]["data"]
    assert not set(config) - known, f"unknown settings {sorted(set(config) - known)}"
    for name, pod in pod_specs(resources).items():
        for container in pod["containers"]:
            # plain helper variables (e.g. POD_IP from the downward API) may feed a setting
            names = {env["name"] for env in container.get("env", []) if env["name"].startswith("CXSTREAM_")}
            assert not names - known, f"{name}: unknown settings {sorted(names - known)}"
            for env in container.get("env", []):
                if "SASL" in env["name"]:
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], \
                        f"{name}: {env['name']} comes from the Secret"
    assert not {"CXSTREAM_SASL_PASSWORD", "CXSTREAM_SASL_USERNAME"} & set(config), "secrets stay out of the ConfigMap"
    for key in list(os.environ):
        if key.startswith("CXSTREAM_"):
            monkeypatch.delenv(key)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CXSTREAM_RULES", str(DEFAULT_RULES))  # the mounted path exists only in the pod
    settings = Settings()
    assert settings.broker and settings.source != "urn:cxstream:default", "a deployment names itself"


def test_worker_container_matches_the_configuration(resources, statefulset):
    config = resources[("ConfigMap", "cxstream-env")]["data"]
    pod = statefulset["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["args"] == ["worker"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert str(port) == config["CXSTREAM_WEB_PORT"] == pod["metadata"]["annotations"]["prometheus.io/port"]
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["state"]["mountPath"] == config["CXSTREAM_DATA_DIR"], "the claim holds the state dir"
    rules_path = Path(config["CXSTREAM_RULES"])
    assert mounts["rules"]["mountPath"] == str(rules_path.parent) and mounts["rules"].get("readOnly")
    assert rules_path.name in resources[("ConfigMap", "cxstream-rules")]["data"]
    assert mounts["tmp"]["mountPath"] == "/tmp"
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "state" and claim["spec"]["resources"]["requests"]["storage"]
    assert statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30, \
        "time for the final flush"


def test_probes(statefulset):
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http"


def test_pods_are_locked_down(resources):
    dockerfile_user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    for name, pod in pod_specs(resources).items():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert str(security["runAsUser"]) == dockerfile_user, f"{name}: the image's user"
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        tmp = [v for v in pod["volumes"] if v["name"] == "tmp"]
        assert tmp and "emptyDir" in tmp[0], f"{name}: /tmp is an emptyDir"
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            resources_ = container["resources"]
            assert {"cpu", "memory"} <= resources_["requests"].keys(), name
            assert {"cpu", "memory"} <= resources_["limits"].keys(), name
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_topics_job_runs_topics_create(job):
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert container["args"] == ["topics", "create"] and args.func.__name__ == "cmd_topics"
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_rules_configmap_is_the_shipped_rules_file(resources):
    stale = "deploy/kubernetes/configmap-rules.yaml differs from cxstream/domain/default_rules.yaml: " \
            "run `.venv/bin/python deploy/sync_rules.py`"
    text = resources[("ConfigMap", "cxstream-rules")]["data"]["rules.yaml"]
    assert text == DEFAULT_RULES.read_text(), stale
    spec = importlib.util.spec_from_file_location("deploy_sync_rules", ROOT / "deploy" / "sync_rules.py")
    sync_rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync_rules)
    assert (K8S / "configmap-rules.yaml").read_text() == sync_rules.render(), stale
    load_rules(DEFAULT_RULES)
