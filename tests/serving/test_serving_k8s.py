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


# --------------------------------------------------------------------------------------------
# KServe. The `kserve` package does not install with the pinned stack (it needs protobuf 6 and
# grpcio 1.73), so the InferenceService is checked against the fields of KServe's v1beta1 Go
# types (pkg/apis/serving/v1beta1: InferenceServiceSpec, PredictorSpec,
# ComponentExtensionSpec, PredictorExtensionSpec), listed here; the pod and container parts
# are validated as a Pod against Kubernetes' own schema.

KSERVE = os.path.join(K8S, "kserve")
ISVC_SPEC_FIELDS = {"predictor", "explainer", "transformer"}
PREDICTOR_IMPLEMENTATIONS = {
    "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml",
    "lightgbm", "paddle", "model",
}  # fmt: skip
PREDICTOR_OWN_FIELDS = {"name", "storageUris", "storageContainerName", "workerSpec"}
COMPONENT_EXTENSION_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType",
    "autoScaling", "containerConcurrency", "timeout", "canaryTrafficPercent", "logger",
    "batcher", "labels", "annotations", "deploymentStrategy",
}  # fmt: skip
PREDICTOR_EXTENSION_FIELDS = {
    "storageUri", "runtimeVersion", "protocolVersion", "storage", "confidential",
}  # fmt: skip
SCALE_METRICS = {"cpu", "memory", "concurrency", "rps"}
STORAGE_SCHEMES = ("gs://", "s3://", "pvc://", "https://", "hf://", "oci://")


def kserve_documents() -> list[dict]:
    return [d for name in ("inferenceservice.yaml", "service-account.yaml")
            for d in load_documents(os.path.join(KSERVE, name))]  # fmt: skip


def check_inference_service(isvc: dict) -> dict:
    """KServe's field rules for a TensorFlow predictor; returns the predictor."""
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    assert set(isvc["spec"]) <= ISVC_SPEC_FIELDS, set(isvc["spec"]) - ISVC_SPEC_FIELDS
    predictor = isvc["spec"]["predictor"]
    implementations = set(predictor) & PREDICTOR_IMPLEMENTATIONS
    assert implementations == {"tensorflow"}, implementations
    pod_fields = (
        set(predictor)
        - PREDICTOR_IMPLEMENTATIONS
        - PREDICTOR_OWN_FIELDS
        - COMPONENT_EXTENSION_FIELDS
    )
    tensorflow = predictor["tensorflow"]
    container = {k: v for k, v in tensorflow.items() if k not in PREDICTOR_EXTENSION_FIELDS}
    # KServe fills the container's name and image from the runtime; the rest is a Container.
    container = {"name": "kserve-container", "image": "tensorflow/serving", **container}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": isvc["metadata"]["name"]},
        "spec": {**{k: predictor[k] for k in pod_fields}, "containers": [container]},
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)  # unknown fields fail here
    assert 1 <= predictor.get("minReplicas", 1) <= predictor["maxReplicas"]
    assert predictor.get("scaleMetric", "cpu") in SCALE_METRICS
    assert isinstance(predictor.get("scaleTarget", 1), int)
    assert tensorflow["storageUri"].startswith(STORAGE_SCHEMES)
    # KServe's TF rule: a runtime without the -gpu suffix asks for no GPU, and the reverse.
    limits = tensorflow["resources"].get("limits", {})
    wants_gpu = any("gpu" in key for key in limits)
    assert wants_gpu == tensorflow["runtimeVersion"].endswith("-gpu")
    return predictor


def test_kserve_inference_service_is_valid_and_matches_the_push():
    documents = kserve_documents()
    (isvc,) = by_kind(documents, "InferenceService")
    predictor = check_inference_service(isvc)
    tensorflow = predictor["tensorflow"]
    # The push location is the cloud overlay's versions folder, which the Pusher writes.
    with open(os.path.join(K8S, "overlays", "cloud", "config", "models.config")) as f:
        cloud = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = cloud.model_config_list.config
    assert tensorflow["storageUri"] == model.base_path
    assert isvc["metadata"]["name"] == model.name == Serving().model_name
    assert tensorflow["runtimeVersion"].split(".")[:2] == tf.__version__.split(".")[:2]
    assert tensorflow["resources"]["requests"] and tensorflow["resources"]["limits"]
    limit = Serving().max_message_mb * 1024 * 1024
    assert any(f"grpc.max_receive_message_length={limit}" in a for a in tensorflow["args"])
    (account,) = by_kind(documents, "ServiceAccount")
    kubernetes_validate.validate(account, K8S_VERSION, strict=True)
    assert predictor["serviceAccountName"] == account["metadata"]["name"]


def test_kserve_checks_refuse_what_kserve_refuses():
    (isvc,) = by_kind(kserve_documents(), "InferenceService")
    import copy

    def broken(edit) -> dict:
        document = copy.deepcopy(isvc)
        edit(document["spec"]["predictor"])
        return document

    cases = [
        lambda p: p.update(sklearn={"storageUri": "gs://x"}),  # two implementations
        lambda p: p.update(minReplicas=5),  # above maxReplicas
        lambda p: p.update(scaleMetric="gpu"),
        lambda p: p["tensorflow"].update(storageUri="/local/path"),
        lambda p: p["tensorflow"].update(resoures={}),  # a typo KServe's schema refuses
        lambda p: p["tensorflow"]["resources"]["limits"].update({"nvidia.com/gpu": 1}),
    ]
    for edit in cases:
        with pytest.raises((AssertionError, kubernetes_validate.ValidationError)):
            check_inference_service(broken(edit))


def test_kserve_overlay_renders():
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the KServe kustomization was not rendered")
    out = subprocess.run(
        [KUBECTL, "kustomize", KSERVE], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    documents = [d for d in yaml.safe_load_all(out) if d]
    assert sorted(d["kind"] for d in documents) == ["InferenceService", "ServiceAccount"]
    assert {d["metadata"]["namespace"] for d in documents} == {"polyvit"}
    check_inference_service(by_kind(documents, "InferenceService")[0])
