"""The lab on Kubernetes with the Prometheus Operator: plain manifests rendered from the sources.

``obslab render k8s`` (or ``python -m obslab.k8s``) writes ``deploy/k8s/`` from
``config/stack.yaml``, the rule generator (``alerts.rules``, profile ``prod``) and the
dashboards package, as kustomize bases and overlays (see :mod:`obslab.k8s.layout`). Nothing
here talks to a cluster: the operator, kubectl and Grafana's sidecar do the rest.

The renderer builds the dashboards, so it needs the ``grafana`` extra and a checkout's
``dashboards/``; the services' image has neither, and its ``obslab`` says so when asked to render.
"""
