"""The pipeline image and the KFP namespace manifests, checked offline (no Docker engine, no
cluster here): the Dockerfile installs the lock like `make install` and copies files that exist;
k8s/kubeflow validates against the Kubernetes schema and agrees with the config defaults."""

import fnmatch
import importlib.util
import os
import pathlib
import re
import shlex

import kubernetes_validate
import pytest
import yaml

from core.config import Kubeflow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(REPO, "k8s", "kubeflow")
K8S_VERSION = "1.29.0"
ENTRY_POINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


def read(*parts: str) -> str:
    with open(os.path.join(REPO, *parts)) as f:
        return f.read()


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages(dockerfile: str) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            out.append([])
        out[-1].append((keyword, rest))
    return out


def makefile_pip_flags() -> set[str]:
    """Flags of the Makefile's `pip install ... -r $(LOCK)` line."""
    [line] = [x for x in read("Makefile").splitlines() if "-r $(LOCK)" in x]
    return {
        w
        for w in shlex.split(line)
        if w.startswith("--") and "quiet" not in w and "version-check" not in w
    }


def test_every_stage_is_python_311_slim_bookworm():
    bases = [rest.split()[0] for rest in (s[0][1] for s in stages(read("Dockerfile")))]
    assert bases and all(b == "python:3.11-slim-bookworm" for b in bases)


def test_lock_is_installed_like_make_install():
    runs = [rest for k, rest in instructions(read("Dockerfile")) if k == "RUN"]
    lock_installs = [r for r in runs if "-r requirements.lock" in r and "pip install" in r]
    assert len(lock_installs) == 1
    words = set(shlex.split(lock_installs[0]))
    assert makefile_pip_flags() <= words  # --no-deps --ignore-requires-python
    wheel_builds = [r for r in runs if "pip wheel" in r]
    assert all(
        {"--no-deps", "--ignore-requires-python"} <= set(shlex.split(r)) for r in wheel_builds
    )
    project = [r for r in runs if re.search(r"pip install [^\n]*--no-deps[^\n]* \.(\s|$)", r)]
    assert project, "the project itself is installed"
    assert ENTRY_POINT in project[0], "the build checks that TFX's KFP entry point imports"


def test_copies_exist_and_are_not_dockerignored():
    ignored = [
        x.strip() for x in read(".dockerignore").splitlines() if x.strip() and not x.startswith("#")
    ]
    copies = [rest for k, rest in instructions(read("Dockerfile")) if k == "COPY"]
    assert copies
    for rest in copies:
        sources = [w for w in shlex.split(rest) if not w.startswith("--")][:-1]
        for source in sources:
            assert os.path.exists(os.path.join(REPO, source)), f"Dockerfile copies missing {source}"
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    copied = {shlex.split(r)[0] for r in copies}
    packages = {p.parent.name for p in pathlib.Path(REPO).glob("*/__init__.py")}
    for package in packages - {"tests", "benchmarks"}:
        assert package in copied, f"the image lacks the {package} package"


def test_environment_and_entry_point():
    env = " ".join(rest for k, rest in instructions(read("Dockerfile")) if k == "ENV")
    assert "TF_USE_LEGACY_KERAS=1" in env.split()
    assert importlib.util.find_spec(ENTRY_POINT) is not None
    assert any(x.startswith("tfx==") for x in read("requirements.lock").splitlines())


# ---- k8s/kubeflow --------------------------------------------------------------------------


def documents() -> list[dict]:
    found = []
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            with open(os.path.join(K8S, name)) as f:
                found += [d for d in yaml.safe_load_all(f) if d]
    return found


@pytest.mark.parametrize(
    "document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifest_validates(document):
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_runner_identity_matches_the_config():
    by_kind = {d["kind"]: d for d in documents()}
    account = by_kind["ServiceAccount"]["metadata"]
    assert account["name"] == Kubeflow().service_account
    binding = by_kind["RoleBinding"]
    assert binding["roleRef"]["name"] == by_kind["Role"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    root = by_kind["ConfigMap"]["data"]["defaultPipelineRoot"]
    assert root.startswith("gs://")
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        listed = yaml.safe_load(f)["resources"]
    assert sorted(listed) == sorted(
        n for n in os.listdir(K8S) if n.endswith(".yaml") and n != "kustomization.yaml"
    )
