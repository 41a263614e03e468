"""The files under ``deploy/k8s/``: kustomize bases and overlays, one document list a file.

```
deploy/k8s/
  monitoring/          the shared Prometheus and Alertmanager (operator resources), Grafana
                       dashboards and datasources; applied once
  base/                one lab: workloads, Services, budgets, autoscaler, ServiceMonitors
  overlays/lab/        the base in namespace obslab, with its rules and routes
  overlays/class/      one namespace a student, each a whole lab (student-01, ...)
```

A lab's PrometheusRule and AlertmanagerConfig name its namespace inside their text (runbook
links, webhook URLs, the queries of descriptions), which kustomize's namespace transformer
does not rewrite; so they are rendered per overlay, beside the overlay's kustomization.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from obslab.k8s import monitoring, workloads
from obslab.k8s.options import DEPLOY_DIR, PROFILE, RenderOptions
from obslab.stackconfig import StackConfig, load_stack

LAB_NAMESPACE = "obslab"

_HEADER = (
    "# Rendered by `obslab render k8s` (obslab/k8s/) from config/stack.yaml, alerts/ and\n"
    "# dashboards/; do not edit: change the sources and render again.\n"
)


def student_namespace(index: int) -> str:
    return f"student-{index:02d}"


class _Dumper(yaml.SafeDumper):
    """Writes a mapping used twice (the monitors', rules' and routes' selector) in full each
    time: anchors and aliases would be legal YAML, but a reader should not need them."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _dump(documents: list[dict]) -> str:
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=100)
    return _HEADER + body


def _kustomization(resources: list[str], **fields: object) -> str:
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        **fields,
        "resources": resources,
    }
    return _HEADER + yaml.safe_dump(document, sort_keys=False)


def _namespace(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": workloads.PART_OF}},
    }


def _lab_overlay(
    stack: StackConfig, namespace: str, options: RenderOptions, base: str
) -> dict[str, str]:
    profile = stack.profile(PROFILE)
    return {
        "kustomization.yaml": _kustomization(
            [base, "namespace.yaml", "rules.yaml", "alertmanager-config.yaml"],
            namespace=namespace,
        ),
        "namespace.yaml": _dump([_namespace(namespace)]),
        "rules.yaml": _dump([monitoring.prometheus_rule(stack, options.rules_profile, namespace)]),
        "alertmanager-config.yaml": _dump(
            [monitoring.alertmanager_config(stack, profile, namespace)]
        ),
    }


def render_files(
    stack: StackConfig | None = None, options: RenderOptions | None = None
) -> dict[Path, str]:
    """Every file under ``deploy/k8s/`` (relative to it) and its content."""
    stack = stack or load_stack()
    options = options or RenderOptions()
    profile = stack.profile(PROFILE)
    files: dict[str, str] = {}

    base = {
        "scoring.yaml": workloads.scoring(stack, options.deployed_at),
        "features.yaml": workloads.features(stack, options.deployed_at),
        "oncall.yaml": workloads.oncall(stack, monitoring.TOKEN_SECRET),
        "loadgen.yaml": workloads.locust(stack),
        "service-monitors.yaml": monitoring.service_monitors(profile),
    }
    files["base/kustomization.yaml"] = _kustomization(sorted(base))
    files.update({f"base/{name}": _dump(documents) for name, documents in base.items()})

    shared = {
        "monitoring.yaml": monitoring.monitoring_stack(
            profile, options.remote_write_url, options.cluster
        ),
        "grafana.yaml": monitoring.grafana_config_maps(),
    }
    files["monitoring/kustomization.yaml"] = _kustomization(
        sorted(shared), namespace=monitoring.MONITORING_NAMESPACE
    )
    files.update({f"monitoring/{name}": _dump(documents) for name, documents in shared.items()})

    for name, text in _lab_overlay(stack, LAB_NAMESPACE, options, "../../base").items():
        files[f"overlays/lab/{name}"] = text
    students = [student_namespace(i) for i in range(1, options.students + 1)]
    files["overlays/class/kustomization.yaml"] = _kustomization(students)
    for namespace in students:
        overlay = _lab_overlay(stack, namespace, options, "../../../base")
        for name, text in overlay.items():
            files[f"overlays/class/{namespace}/{name}"] = text
    return {Path(name): text for name, text in sorted(files.items())}


def write_files(out: Path = DEPLOY_DIR, options: RenderOptions | None = None) -> list[Path]:
    """Render into ``out``: write what changed, remove files no longer rendered (a class
    rendered smaller); returns the paths written or removed."""
    rendered = {out / path: text for path, text in render_files(options=options).items()}
    changed = []
    for path, text in rendered.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    if out.is_dir():
        for path in sorted(out.rglob("*.yaml")):
            if path not in rendered:
                path.unlink()
                changed.append(path)
        for folder in sorted((p for p in out.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
    return changed
