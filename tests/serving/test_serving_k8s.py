"""k8s/serving: every manifest validated offline against Kubernetes 1.29, overlays rendered."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import tensorflow as tf
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from core.config import Serving

K8S = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "k8s", "serving")
K8S_VERSION = "1.29.0"
KUBECTL = shutil.which("kubectl")


def load_documents(path: str) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def base_manifests() -> list[str]:
    base = os.path.join(K8S, "base")
    return sorted(
        os.path.join(base, name)
        for name in os.listdir(base)
        if name.endswith(".yaml") and name != "kustomization.yaml"
    )


def render(overlay: str) -> list[dict]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the kustomize overlays were not rendered")
    out = subprocess.run(
        [KUBECTL, "kustomize", os.path.join(K8S, "overlays", overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(documents: list[dict], kind: str) -> list[dict]:
    return [d for d in documents if d["kind"] == kind]


@pytest.mark.parametrize("path", base_manifests(), ids=os.path.basename)
def test_base_manifest_is_valid(path):
    for document in load_documents(path):
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", ["local", "cloud"])
def test_overlay_renders_valid_and_locked_down(overlay):
    documents = render(overlay)
    kinds = sorted(d["kind"] for d in documents)
    for kind in ("ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Service"):
        assert kind in kinds, kinds
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)

    (deployment,) = by_kind(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        # The serving image's version follows the TF the model is exported with.
        image, tag = container["image"].split(":")
        assert image == "tensorflow/serving"
        assert tag.split(".")[:2] == tf.__version__.split(".")[:2]
        assert "readinessProbe" in container

    (service,) = by_kind(documents, "Service")
    assert sorted(p["port"] for p in service["spec"]["ports"]) == [8500, 8501]
    (hpa,) = by_kind(documents, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]

    (config_map,) = by_kind(documents, "ConfigMap")
    mounted = {v["name"]: v for v in pod["volumes"]}
    assert mounted["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    models = text_format.Parse(
        config_map["data"]["models.config"], model_server_config_pb2.ModelServerConfig()
    )
    (model,) = models.model_config_list.config
    assert model.name == Serving().model_name
    assert set(model.version_labels) == {"stable", "canary"}
    assert set(model.version_labels.values()) <= set(model.model_version_policy.specific.versions)
    readiness = pod["containers"][0]["readinessProbe"]["httpGet"]["path"]
    assert readiness == f"/v1/models/{model.name}/metadata"
    if overlay == "cloud":
        assert model.base_path.startswith("gs://")
        assert "persistentVolumeClaim" not in mounted["models"]
        assert pod["serviceAccountName"] in {
            d["metadata"]["name"] for d in by_kind(documents, "ServiceAccount")
        }
    else:
        claim = mounted["models"]["persistentVolumeClaim"]["claimName"]
        assert claim in {d["metadata"]["name"] for d in by_kind(documents, "PersistentVolumeClaim")}


def test_config_files_agree_with_the_project_config():
    """The batching file holds the local server's batching defaults; metrics path is scraped."""
    with open(os.path.join(K8S, "base", "config", "batching.config")) as f:
        batching = {k: int(v) for k, v in re.findall(r"(\w+) \{ value: (\d+) \}", f.read())}
    serving = Serving()
    assert batching == {
        "max_batch_size": serving.max_batch_size,
        "batch_timeout_micros": serving.batch_timeout_micros,
        "num_batch_threads": serving.num_batch_threads,
        "max_enqueued_batches": serving.max_enqueued_batches,
    }
    with open(os.path.join(K8S, "base", "config", "monitoring.config")) as f:
        path = re.search(r'path: "([^"]+)"', f.read()).group(1)
    (deployment,) = load_documents(os.path.join(K8S, "base", "deployment.yaml"))
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == path
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    limit = serving.max_message_mb * 1024 * 1024
    assert any(f"grpc.max_receive_message_length={limit}" in a for a in args)
