"""The lab on Kubernetes with the Prometheus Operator: plain manifests rendered from the sources.

``obslab render k8s`` (or ``python -m obslab.k8s``) writes ``deploy/k8s/`` from
``config/stack.yaml``, the rule generator (``alerts.rules``, profile ``prod``) and the
dashboards package, as kustomize bases and overlays (see :mod:`obslab.k8s.layout`). Nothing
here talks to a cluster: the operator, kubectl and Grafana's sidecar do the rest.
"""

from obslab.k8s.layout import DEPLOY_DIR, RenderOptions, render_files, write_files

__all__ = ["DEPLOY_DIR", "RenderOptions", "render_files", "write_files"]
