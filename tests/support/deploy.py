"""The production deployment's Kubernetes manifests, as the tests read them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from tests.support.stack import ROOT

K8S = ROOT / "deploy" / "k8s"


def k8s_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (file name, document) for every manifest the kustomization lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                yield name, doc


def k8s_config() -> dict[str, str]:
    """Return the data of the ``klients-config`` ConfigMap."""
    return next(d["data"] for _, d in k8s_documents()
                if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "klients-config")
