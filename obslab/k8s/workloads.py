"""One lab's workloads: scoring, features and oncall as Deployments, and Locust.

A deploy on Kubernetes is a Deployment rollout, and a rollout is a change of the pod template.
So the release a pod runs (version, commit, model, the version it replaced, when it was
deployed, and whether it declared its score shift intended) lives in the pod template's
annotations, and the container reads them through the downward API into the ``OBSLAB_*``
settings the services already read. A rollout that changes
them starts pods with the new release and a new deploy time; a container restart, a pod
rescheduled by its ReplicaSet or ``kubectl rollout restart`` (which only adds
``kubectl.kubernetes.io/restartedAt``) keeps them, so ``app_deploy_timestamp_seconds`` and
``app_build_info`` still tell a deploy from a restart. :func:`rollout_patch` is the patch that
deploys a release.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from alerts.thresholds import load_profile
from loadgen.profile import Profile as LoadProfile
from obslab.stackconfig import AppService, StackConfig

PART_OF = "obslab"
#: Where the image keeps the lab's state (the Dockerfile's OBSLAB_HOME).
STATE_DIR = "/var/lib/obslab"
#: The image ``docker build`` makes from the Dockerfile; overlays rename it with ``images:``.
IMAGE = "obslab-app:0.1.0"
#: The deploy time of the initial release in the committed manifests (2026-01-01T00:00:00Z):
#: a fixed value keeps them reproducible; ``--deployed-at`` stamps another.
INITIAL_DEPLOYED_AT = 1767225600

#: Pod-template annotations that carry the release, and the setting each one fills.
RELEASE_ANNOTATIONS = {
    "obslab.dev/version": "OBSLAB_SERVICE_VERSION",
    "obslab.dev/commit": "OBSLAB_COMMIT",
    "obslab.dev/model-version": "OBSLAB_MODEL_VERSION",
    "obslab.dev/previous-version": "OBSLAB_PREVIOUS_VERSION",
    "obslab.dev/deployed-at": "OBSLAB_DEPLOYED_AT",
    "obslab.dev/expected-score-shift": "OBSLAB_EXPECTED_SCORE_SHIFT",
}

#: Requests per instance, from the native stack under the demo load (Locust's 10 users): RSS
#: and CPU of each service's gunicorn master and worker; the figures and how they were taken
#: are in docs/kubernetes.md ("Resources"). Requests sit above the measured use; the memory
#: limit is the one the MemoryGrowth alert predicts against (alerts/thresholds.yaml
#: memory.limit_bytes), so the alert fires before the kernel's OOM killer does.
REQUESTS = {
    "scoring": {"cpu": "100m", "memory": "256Mi"},
    "features": {"cpu": "50m", "memory": "128Mi"},
    "oncall": {"cpu": "20m", "memory": "96Mi"},
    "locust": {"cpu": "50m", "memory": "128Mi"},
}
#: One gthread worker per pod runs Python code on one core at a time.
CPU_LIMIT = "1"
#: The HorizontalPodAutoscaler keeps scoring's CPU near this share of its request.
SCORING_CPU_TARGET = 70
SCORING_MAX_REPLICAS = 10


def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def _meta(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "labels": labels(name), **extra}


def memory_limit() -> str:
    limit = int(load_profile("prod").number("memory.limit_bytes"))
    return f"{limit // 2**20}Mi"


def release_annotations(
    version: str,
    commit: str,
    model_version: str,
    previous_version: str,
    deployed_at: float,
    expected_score_shift: bool = False,
) -> dict[str, str]:
    values = (
        version,
        commit,
        model_version,
        previous_version,
        str(int(deployed_at)),
        "1" if expected_score_shift else "0",
    )
    return dict(zip(RELEASE_ANNOTATIONS, values, strict=True))


def rollout_patch(
    version: str,
    commit: str,
    model_version: str,
    previous_version: str,
    deployed_at: float,
    expected_score_shift: bool = False,
) -> dict[str, object]:
    """The strategic-merge patch that deploys a release (``kubectl patch deployment ...``).

    It sets every release annotation, ``expected-score-shift`` too: a merge keeps what a patch
    leaves out, and one release's declared shift must not pass to the next.
    """
    annotations = release_annotations(
        version, commit, model_version, previous_version, deployed_at, expected_score_shift
    )
    return {"spec": {"template": {"metadata": {"annotations": annotations}}}}


def _release_env() -> list[dict[str, object]]:
    return [
        {
            "name": setting,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{annotation}']"}},
        }
        for annotation, setting in RELEASE_ANNOTATIONS.items()
    ]


def _env(values: dict[str, str]) -> list[dict[str, object]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def _security() -> dict[str, object]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security() -> dict[str, object]:
    # The image's obslab user (Dockerfile); fsGroup lets it write the mounted volumes.
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _probe(path: str, period: int, failures: int) -> dict[str, object]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _gunicorn(service: AppService) -> list[str]:
    # As under compose: one gthread worker per pod keeps prometheus-client in single-process
    # mode (exemplars work); replicas scale out behind the Service instead.
    return [
        "gunicorn",
        f"--bind=0.0.0.0:{service.port}",
        "--workers=1",
        "--worker-class=gthread",
        f"--threads={service.threads}",
        "--no-control-socket",
        "--config=python:app.gunicorn_conf",
        service.app,
    ]


def _container(
    service: AppService, env: list[dict[str, object]], mounts: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "name": service.name,
        "image": IMAGE,
        "command": _gunicorn(service),
        "ports": [{"name": "http", "containerPort": service.port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": REQUESTS[service.name],
            "limits": {"cpu": CPU_LIMIT, "memory": memory_limit()},
        },
        # Startup covers training-free model loading and seeding; after it, liveness restarts
        # a hung process and readiness takes a pod whose store is unreadable out of the Service.
        "startupProbe": _probe("/healthz", period=2, failures=30),
        "livenessProbe": _probe(service.health, period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "securityContext": _security(),
        "volumeMounts": mounts,
    }


def _deployment(
    service: AppService,
    replicas: int | None,
    env: list[dict[str, object]],
    volumes: dict[str, dict[str, object]],
    *,
    annotations: dict[str, str] | None = None,
    strategy: dict[str, object] | None = None,
) -> dict[str, object]:
    mounts = [{"name": name, "mountPath": path} for name, (path, _) in _split(volumes).items()]
    template_meta: dict[str, object] = {"labels": labels(service.name)}
    if annotations:
        template_meta["annotations"] = annotations
    # Without replicas the autoscaler owns the count: an apply would reset it otherwise.
    count = {} if replicas is None else {"replicas": replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(service.name),
        "spec": {
            **count,
            "selector": {"matchLabels": labels(service.name)},
            "strategy": strategy
            or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "securityContext": _pod_security(),
                    "terminationGracePeriodSeconds": 15,
                    "containers": [_container(service, env, mounts)],
                    "volumes": [
                        {"name": name, **source} for name, (_, source) in _split(volumes).items()
                    ],
                },
            },
        },
    }


def _split(volumes: dict[str, dict[str, object]]) -> dict[str, tuple[str, dict[str, object]]]:
    """``{name: {"mountPath": p, **source}}`` -> ``{name: (p, source)}``."""
    return {
        name: (str(spec["mountPath"]), {k: v for k, v in spec.items() if k != "mountPath"})
        for name, spec in volumes.items()
    }


def _service(service: AppService) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(service.name),
        "spec": {
            "selector": labels(service.name),
            "ports": [
                {"name": "http", "port": service.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def _disruption_budget(name: str, budget: dict[str, int]) -> dict[str, object]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name),
        "spec": {**budget, "selector": {"matchLabels": labels(name)}},
    }


def _claim(name: str, mode: str, size: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name),
        "spec": {"accessModes": [mode], "resources": {"requests": {"storage": size}}},
    }


def _common_env() -> dict[str, str]:
    return {
        "OBSLAB_ENVIRONMENT": "kubernetes",
        # JSON lines on stdout, where the cluster's log agent reads them.
        "OBSLAB_LOG_FILE": "",
        "OBSLAB_ADMIN_ENABLED": "false",
    }


def _app_env(extra: dict[str, str]) -> list[dict[str, object]]:
    return [
        {"name": "OBSLAB_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        *_release_env(),
        *_env({**_common_env(), **extra}),
    ]


def scoring(stack: StackConfig, deployed_at: float) -> list[dict[str, object]]:
    service = stack.scoring
    release = service.release
    annotations = release_annotations(
        release.version, release.commit, release.model_version, "", deployed_at
    )
    features_url = f"http://{stack.features.name}:{stack.features.port}"
    return [
        _deployment(
            service,
            None,
            _app_env({"OBSLAB_FEATURES_URL": features_url}),
            {
                # Feedback may reach any replica, so replicas share the prediction store,
                # as under compose: the claim needs a ReadWriteMany storage class.
                "predictions": {
                    "mountPath": f"{STATE_DIR}/scoring",
                    "persistentVolumeClaim": {"claimName": "scoring-predictions"},
                },
            },
            annotations=annotations,
        ),
        _claim("scoring-predictions", "ReadWriteMany", "1Gi"),
        _service(service),
        _disruption_budget(service.name, {"minAvailable": 1}),
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(service.name),
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "scoring",
                },
                "minReplicas": service.instances,
                "maxReplicas": SCORING_MAX_REPLICAS,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "averageUtilization": SCORING_CPU_TARGET,
                            },
                        },
                    }
                ],
            },
        },
    ]


def features(stack: StackConfig, deployed_at: float) -> list[dict[str, object]]:
    service = stack.features
    release = service.release
    annotations = release_annotations(
        release.version, release.commit, release.model_version, "", deployed_at
    )
    return [
        _deployment(
            service,
            service.instances,
            _app_env({}),
            # Each pod seeds the same synthetic customer history (fixed seed) at start.
            {"customers": {"mountPath": f"{STATE_DIR}/features", "emptyDir": {}}},
            annotations=annotations,
        ),
        _service(service),
        _disruption_budget(service.name, {"minAvailable": 1}),
    ]


def oncall(stack: StackConfig, token_secret: str) -> list[dict[str, object]]:
    service = stack.oncall
    env = [
        *_env(_common_env()),
        {
            "name": "OBSLAB_ONCALL_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "token"}},
        },
    ]
    return [
        _deployment(
            service,
            1,
            env,
            {
                "pages": {
                    "mountPath": f"{STATE_DIR}/oncall",
                    "persistentVolumeClaim": {"claimName": "oncall-pages"},
                }
            },
            # One SQLite writer: the old pod stops before the new one opens the store.
            strategy={"type": "Recreate"},
        ),
        _claim("oncall-pages", "ReadWriteOnce", "1Gi"),
        _service(service),
        # One replica: a budget of one lets a node drain, and says the pod may go.
        _disruption_budget(service.name, {"maxUnavailable": 1}),
    ]


def locust(stack: StackConfig) -> list[dict[str, object]]:
    """Locust, headless, against scoring; its traffic profile is a ConfigMap the users re-read
    (``kubectl edit configmap loadgen-profile`` changes the traffic without a restart)."""
    load = stack.locust
    profile = json.dumps(asdict(LoadProfile()), sort_keys=True)
    command = [
        "locust",
        "-f",
        "loadgen/locustfile.py",
        "--headless",
        f"--host=http://{stack.scoring.name}:{stack.scoring.port}",
        f"--users={load.users}",
        f"--spawn-rate={load.spawn_rate:g}",
        "--only-summary",
    ]
    name = "loadgen"
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{name}-profile"),
            "data": {"profile.json": profile + "\n"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(name),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels(name)},
                "template": {
                    "metadata": {"labels": labels(name)},
                    "spec": {
                        "securityContext": _pod_security(),
                        "containers": [
                            {
                                "name": "locust",
                                "image": IMAGE,
                                "command": command,
                                "env": _env({"OBSLAB_PROFILE": "demo"}),
                                "resources": {
                                    "requests": REQUESTS["locust"],
                                    "limits": {"cpu": CPU_LIMIT, "memory": "256Mi"},
                                },
                                "securityContext": _security(),
                                "volumeMounts": [
                                    {"name": "profile", "mountPath": f"{STATE_DIR}/load"}
                                ],
                            }
                        ],
                        "volumes": [{"name": "profile", "configMap": {"name": f"{name}-profile"}}],
                    },
                },
            },
        },
    ]
