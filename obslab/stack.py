"""The native stack: the lab's processes started, inspected and stopped on this machine.

``up`` starts, in order, the features and scoring instances (gunicorn), nginx in front of
them, the oncall receiver, Alertmanager, Prometheus and, on request, Locust. Everything it
writes lives in the state directory (``$OBSLAB_HOME``, see ``obslab.layout``); what it runs is
remembered in ``stack.json`` (``obslab.topology``) and in one pid file per process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from app.settings import state_dir
from obslab import render
from obslab.errors import ObslabError
from obslab.layout import StateLayout
from obslab.processes import ProcessSpec, Supervisor, log_tail, port_in_use, probe
from obslab.stackconfig import (
    REPO_ROOT,
    AppService,
    Profile,
    StackConfig,
    load_stack,
    port_offset_from_env,
)
from obslab.topology import Instance, Release, Topology, read_topology, write_topology

#: The stack's services in start order; ``up`` waits for each to be healthy before the next.
SERVICES = ("features", "scoring", "nginx", "oncall", "alertmanager", "prometheus", "locust")
HEALTH_TIMEOUT = 60.0
STOP_GRACE = 10.0
LOCUSTFILE = REPO_ROOT / "loadgen" / "locustfile.py"

# The Debian package that ships each binary the stack runs.
_PACKAGES = {
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "nginx": "nginx-light",
}
_PASSED_ENV = frozenset({"PATH", "HOME", "LANG", "TZ", "TMPDIR", "PYTHONPATH"})


@dataclass(frozen=True)
class _Secrets:
    oncall_token: str
    admin_token: str | None


def up(profile: str = "demo", *, load: bool = False) -> dict[str, str]:
    """Start whatever part of the stack is not running; return the URLs of its front doors."""
    layout = StateLayout(state_dir())
    layout.create()
    supervisor = Supervisor(layout.run)
    topology = _running_topology(layout, supervisor)
    if topology is None:
        offset = port_offset_from_env()
        stack = load_stack(port_offset=offset)
        stack.profile(profile)
        # Pid files left by a crash or a reboot name dead processes: clear them.
        supervisor.stop(supervisor.names())
        topology = _first_topology(stack, profile, offset, load=load)
    else:
        _check_matches(topology, profile, layout)
        stack = load_stack(port_offset=topology.port_offset)
        topology = replace(topology, load=topology.load or load)
    _start(stack, topology, layout, SERVICES)
    found = urls()
    print(f"obslab is up (profile {profile}, state in {layout.root}):", flush=True)
    for name, url in found.items():
        print(f"  {name:<13}{url}", flush=True)
    return found


def down() -> list[str]:
    """Stop every process ``up`` started (by pid file); return the names that were running."""
    layout = StateLayout(state_dir())
    supervisor = Supervisor(layout.run)
    stopped = supervisor.stop(supervisor.names(), STOP_GRACE)
    layout.stack_file.unlink(missing_ok=True)
    for name in stopped:
        print(f"stopped {name}", flush=True)
    return stopped


def status() -> list[dict[str, object]]:
    """One entry per process of the stack: ``name``, ``pid``, ``port``, ``url``, ``healthy``."""
    layout = StateLayout(state_dir())
    supervisor = Supervisor(layout.run)
    stack, topology = _current(layout)
    # Status starts nothing, so the specs need no secrets.
    stages = _stages(stack, topology, layout, _Secrets("", None))
    specs = [spec for _, stage in stages for spec in stage]
    entries = []
    for spec in specs:
        pid = supervisor.pid(spec.name)
        healthy = pid is not None and (spec.health_url is None or probe(spec.health_url))
        entries.append(
            {"name": spec.name, "pid": pid, "port": spec.port, "url": spec.url, "healthy": healthy}
        )
    return entries


def urls() -> dict[str, str]:
    """Where to reach the stack: the load balancers, oncall, Prometheus and Alertmanager."""
    stack, _ = _current(StateLayout(state_dir()))
    return {
        "scoring": _url(stack.scoring.port),
        "features": _url(stack.features.port),
        "oncall": _url(stack.oncall.port),
        "prometheus": _url(stack.prometheus_port),
        "alertmanager": _url(stack.alertmanager_port),
    }


def stop_service(service: str) -> list[str]:
    """Stop every process of one service (e.g. both features instances), keeping the rest."""
    _check_service(service)
    supervisor = Supervisor(StateLayout(state_dir()).run)
    return supervisor.stop(
        [name for name in supervisor.names() if _service_of(name) == service], STOP_GRACE
    )


def start_service(service: str) -> None:
    """Start again the processes of one service that are not running."""
    _check_service(service)
    layout = StateLayout(state_dir())
    topology = read_topology(layout.stack_file)
    if topology is None:
        raise ObslabError("the stack is not running; start it with `obslab up`")
    _start(load_stack(port_offset=topology.port_offset), topology, layout, {service})


def publish_instances(stack: StackConfig, topology: Topology, layout: StateLayout) -> None:
    """Point nginx and Prometheus at the topology's instances.

    Rewrites the nginx upstreams (and reloads a running nginx) and the file_sd target files,
    which Prometheus picks up by itself.
    """
    _write_atomic(layout.nginx_config, render.render_nginx(stack, topology, layout))
    for service in render.LOAD_BALANCED:
        _write_atomic(
            layout.targets_file(service), render.render_targets(topology.instances_of(service))
        )
    nginx = Supervisor(layout.run).pid("nginx")
    if nginx is not None:
        os.kill(nginx, signal.SIGHUP)


# --- one instance at a time, for deploys (obslab.deploy) -------------------------------------


def start_instance(
    stack: StackConfig, topology: Topology, layout: StateLayout, instance: Instance
) -> None:
    """Start ``instance`` (already in ``topology``) and return once it is healthy.

    It gets the same settings ``up`` gives its service, with its own release; it is not
    published: nginx and Prometheus learn of it from ``publish_and_settle``.
    """
    specs = [
        spec
        for _, stage in _stages(stack, topology, layout, _secrets(stack, topology, layout))
        for spec in stage
        if spec.name == instance.name
    ]
    if not specs:
        raise ObslabError(f"{instance.name} is not an instance of the topology")
    _check_ports(specs)
    supervisor = Supervisor(layout.run)
    try:
        pid = supervisor.start(specs[0])
        print(f"started {instance.name} (pid {pid}), log {specs[0].log}", flush=True)
        supervisor.wait_healthy(specs, HEALTH_TIMEOUT)
    except BaseException:
        supervisor.stop([instance.name], STOP_GRACE)
        raise


def stop_instance(layout: StateLayout, instance: Instance) -> None:
    """Stop one instance gracefully: gunicorn's SIGTERM lets in-flight requests finish."""
    if Supervisor(layout.run).stop([instance.name], STOP_GRACE):
        print(f"stopped {instance.name}", flush=True)


def publish_and_settle(stack: StackConfig, topology: Topology, layout: StateLayout) -> None:
    """Publish the topology's instances; return once nginx no longer routes to any other.

    nginx reloads in the background: new workers take new connections while the old ones
    finish their in-flight requests on the old upstreams, then exit. Only after that can an
    instance left out of the topology stop without dropping a request.
    """
    old_workers = _nginx_workers(layout)
    publish_instances(stack, topology, layout)
    deadline = time.monotonic() + STOP_GRACE
    while any(_alive(worker) for worker in old_workers):
        if time.monotonic() > deadline:
            raise ObslabError(
                f"nginx still runs its old workers {STOP_GRACE:.0f}s after a reload, so it may "
                f"not have taken the new upstreams; last lines of {layout.log('nginx')}:\n"
                f"{log_tail(layout.log('nginx'))}"
            )
        time.sleep(0.05)


def _nginx_workers(layout: StateLayout) -> list[psutil.Process]:
    master = Supervisor(layout.run).pid("nginx")
    if master is None:
        return []
    try:
        return psutil.Process(master).children()
    except psutil.NoSuchProcess:
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        # is_running() also tells a recycled pid from the original process.
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _start(
    stack: StackConfig, topology: Topology, layout: StateLayout, services: Collection[str]
) -> None:
    supervisor = Supervisor(layout.run)
    secrets_ = _secrets(stack, topology, layout)
    stages = []
    for service, specs in _stages(stack, topology, layout, secrets_):
        if service not in services:
            continue
        stage = []
        for spec in specs:
            pid = supervisor.pid(spec.name)
            if pid is None:
                stage.append(spec)
            else:
                print(f"{spec.name} is already running (pid {pid})", flush=True)
        stages.append(stage)
    todo = [spec for stage in stages for spec in stage]
    _check_binaries(todo)
    _check_ports(todo)

    profile = stack.profile(topology.profile)
    _write_atomic(layout.rules_file, render.render_rules(profile, render.runbook_base_url(stack)))
    _write_atomic(layout.prometheus_config, render.render_prometheus(stack, profile, layout))
    _write_atomic(layout.alertmanager_config, render.render_alertmanager(stack, profile, layout))
    write_topology(layout.stack_file, topology)
    publish_instances(stack, topology, layout)

    started: list[str] = []
    try:
        for stage in stages:
            for spec in stage:
                pid = supervisor.start(spec)
                started.append(spec.name)
                print(f"started {spec.name} (pid {pid}), log {spec.log}", flush=True)
            supervisor.wait_healthy(stage, HEALTH_TIMEOUT)
    except BaseException:
        # Ctrl-C included: never leave half of what this call started running.
        supervisor.stop(started, STOP_GRACE)
        raise


def _secrets(stack: StackConfig, topology: Topology, layout: StateLayout) -> _Secrets:
    return _Secrets(
        oncall_token=_token(layout.oncall_token, "OBSLAB_ONCALL_TOKEN"),
        admin_token=(
            _token(layout.admin_token, "OBSLAB_ADMIN_TOKEN")
            if stack.profile(topology.profile).admin
            else None
        ),
    )


def _stages(
    stack: StackConfig, topology: Topology, layout: StateLayout, secrets_: _Secrets
) -> list[tuple[str, list[ProcessSpec]]]:
    """Every process of the stack, grouped by service, in start order."""
    base = {
        key: value
        for key, value in os.environ.items()
        if key in _PASSED_ENV or key.startswith(("LC_", "OTEL_"))
    }
    lab = {**base, "OBSLAB_HOME": str(layout.root), "OBSLAB_PROFILE": topology.profile}
    admin = {"OBSLAB_ADMIN_ENABLED": "true" if secrets_.admin_token is not None else "false"}
    if secrets_.admin_token is not None:
        admin["OBSLAB_ADMIN_TOKEN"] = secrets_.admin_token
    features_url = {"OBSLAB_FEATURES_URL": _url(stack.features.port)}

    def instances(service: AppService, extra: dict[str, str]) -> list[ProcessSpec]:
        return [
            _gunicorn(
                service,
                instance.name,
                instance.port,
                {**lab, **admin, **extra, **_release_env(instance)},
                layout,
            )
            for instance in topology.instances_of(service.name)
        ]

    stages = [
        ("features", instances(stack.features, {})),
        ("scoring", instances(stack.scoring, features_url)),
        ("nginx", [_nginx(stack, layout, base)]),
        (
            "oncall",
            [
                _gunicorn(
                    stack.oncall,
                    "oncall",
                    stack.oncall.port,
                    {
                        **lab,
                        "OBSLAB_ONCALL_TOKEN": secrets_.oncall_token,
                        # Asked for what each firing page is now: held back, or gone.
                        "OBSLAB_ALERTMANAGER_URL": _url(stack.alertmanager_port),
                        "OBSLAB_WATCHDOG_TIMEOUT_SECONDS": str(
                            render.watchdog_timeout_seconds(stack.profile(topology.profile))
                        ),
                    },
                    layout,
                )
            ],
        ),
        ("alertmanager", [_alertmanager(stack, layout, base)]),
        ("prometheus", [_prometheus(stack, stack.profile(topology.profile), layout, base)]),
    ]
    if topology.load:
        stages.append(("locust", [_locust(stack, layout, lab)]))
    return stages


def gunicorn_argv(service: AppService, port: int) -> list[str]:
    """The command that runs one instance of ``service`` listening on ``port``."""
    # One gthread worker per process keeps prometheus-client in single-process mode, where
    # exemplars work; instances scale out behind nginx instead.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        f"--bind=127.0.0.1:{port}",
        "--workers=1",
        "--worker-class=gthread",
        f"--threads={service.threads}",
        # Its default socket path is shared by every gunicorn of the user.
        "--no-control-socket",
        # -c, not --config: opentelemetry-instrument (the overhead benchmark's zero-code
        # variant) would take --config for an abbreviation of its own options.
        "-c",
        "python:app.gunicorn_conf",
        service.app,
    ]


def _gunicorn(
    service: AppService, name: str, port: int, env: dict[str, str], layout: StateLayout
) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=gunicorn_argv(service, port),
        env=env,
        log=layout.log(name),
        port=port,
        health_url=_url(port) + service.health,
        cwd=REPO_ROOT,
    )


def _nginx(stack: StackConfig, layout: StateLayout, env: dict[str, str]) -> ProcessSpec:
    argv = [
        _command("nginx"),
        "-p",
        f"{layout.nginx}/",
        "-c",
        str(layout.nginx_config),
        "-e",
        "stderr",
    ]
    return ProcessSpec(
        name="nginx",
        argv=argv,
        env=env,
        log=layout.log("nginx"),
        port=stack.scoring.port,
        extra_ports=(stack.features.port,),
        health_url=_url(stack.scoring.port) + "/nginx_status",
    )


def _alertmanager(stack: StackConfig, layout: StateLayout, env: dict[str, str]) -> ProcessSpec:
    flags = [
        f"--config.file={layout.alertmanager_config}",
        f"--storage.path={layout.alertmanager_data}",
        # A single Alertmanager: no gossip port to collide with another copy.
        "--cluster.listen-address=",
    ]
    command = _command("prometheus-alertmanager", "alertmanager")
    return _prometheus_server("alertmanager", command, stack.alertmanager_port, flags, env, layout)


def _prometheus(
    stack: StackConfig, profile: Profile, layout: StateLayout, env: dict[str, str]
) -> ProcessSpec:
    flags = [
        f"--config.file={layout.prometheus_config}",
        f"--storage.tsdb.path={layout.prometheus_data}",
        "--enable-feature=exemplar-storage",
        "--web.enable-lifecycle",
        # Every alert Prometheus sends holds for four resend delays: resent at each evaluation,
        # the alerts of a Prometheus that stopped (the Watchdog's included) end within four
        # evaluations, not the four minutes of the default delay.
        f"--rules.alert.resend-delay={profile.evaluation_interval}",
    ]
    return _prometheus_server(
        "prometheus", _command("prometheus"), stack.prometheus_port, flags, env, layout
    )


def _prometheus_server(
    name: str, command: str, port: int, flags: list[str], env: dict[str, str], layout: StateLayout
) -> ProcessSpec:
    """Prometheus or Alertmanager: both take the same web flags and answer ``/-/ready``."""
    argv = [
        command,
        *flags,
        f"--web.listen-address=127.0.0.1:{port}",
        # Links in notifications and alerts point here rather than at the machine's hostname.
        f"--web.external-url={_url(port)}/",
    ]
    return ProcessSpec(
        name=name,
        argv=argv,
        env=env,
        log=layout.log(name),
        port=port,
        health_url=_url(port) + "/-/ready",
    )


def locust_argv(host: str, users: int, spawn_rate: float, *extra: str) -> list[str]:
    """Headless Locust running the lab's locustfile against ``host``."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        f"--host={host}",
        f"--users={users}",
        f"--spawn-rate={spawn_rate:g}",
        "--only-summary",
        *extra,
    ]


def _locust(stack: StackConfig, layout: StateLayout, env: dict[str, str]) -> ProcessSpec:
    if not LOCUSTFILE.is_file():
        raise ObslabError(f"{LOCUSTFILE} not found: the load generator needs it")
    argv = locust_argv(_url(stack.scoring.port), stack.locust.users, stack.locust.spawn_rate)
    # Headless Locust serves no web UI, so it has no port and no health check.
    return ProcessSpec(name="locust", argv=argv, env=env, log=layout.log("locust"), cwd=REPO_ROOT)


def _release_env(instance: Instance) -> dict[str, str]:
    release = instance.release
    return {
        "OBSLAB_INSTANCE": instance.name,
        "OBSLAB_SERVICE_VERSION": release.version,
        "OBSLAB_COMMIT": release.commit,
        "OBSLAB_MODEL_VERSION": release.model_version,
        "OBSLAB_DEPLOYED_AT": repr(release.deployed_at),
        "OBSLAB_PREVIOUS_VERSION": release.previous_version,
        "OBSLAB_EXPECTED_SCORE_SHIFT": "1" if release.expected_score_shift else "0",
    }


def _first_topology(stack: StackConfig, profile: str, offset: int, *, load: bool) -> Topology:
    """The topology of a fresh start: the initial releases from stack.yaml, deployed now."""
    now = time.time()
    releases = {}
    instances = []
    for service in (stack.features, stack.scoring):
        initial = service.release
        release = Release(initial.version, initial.commit, initial.model_version, now)
        releases[service.name] = release
        instances.extend(
            Instance(service.name, index, service.instance_port + index, release)
            for index in range(service.instances)
        )
    return Topology(profile, offset, load, releases, tuple(instances))


def _running_topology(layout: StateLayout, supervisor: Supervisor) -> Topology | None:
    """The saved topology if any of its processes still runs."""
    if not any(supervisor.pid(name) is not None for name in supervisor.names()):
        return None
    topology = read_topology(layout.stack_file)
    if topology is None:
        raise ObslabError(
            f"processes of an earlier run are alive but {layout.stack_file} is gone; "
            "run `obslab down` first"
        )
    return topology


def _current(layout: StateLayout) -> tuple[StackConfig, Topology]:
    """The stack as it runs, or as ``up`` would start it when nothing runs."""
    topology = read_topology(layout.stack_file)
    if topology is not None:
        return load_stack(port_offset=topology.port_offset), topology
    offset = port_offset_from_env()
    stack = load_stack(port_offset=offset)
    return stack, _first_topology(stack, "demo", offset, load=False)


def _check_matches(topology: Topology, profile: str, layout: StateLayout) -> None:
    if topology.profile != profile:
        raise ObslabError(
            f"the stack in {layout.root} runs with profile {topology.profile}; "
            f"run `obslab down` before starting it with profile {profile}"
        )
    offset = port_offset_from_env()
    if offset not in (0, topology.port_offset):
        raise ObslabError(
            f"the stack in {layout.root} runs with port offset {topology.port_offset}, "
            f"not OBSLAB_PORT_OFFSET={offset}; run `obslab down` first"
        )


def _check_service(service: str) -> None:
    if service not in SERVICES:
        raise ObslabError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")


def _check_binaries(specs: list[ProcessSpec]) -> None:
    for spec in specs:
        command = spec.argv[0]
        if not os.path.isabs(command):
            package = _PACKAGES[command]
            raise ObslabError(
                f"{command} not found on PATH (needed for {spec.name}); install the Debian "
                f"package {package} (`sudo apt-get install {package}`, or `make setup` as root)"
            )


def _check_ports(specs: list[ProcessSpec]) -> None:
    for spec in specs:
        for port in spec.ports:
            if port_in_use(port):
                raise ObslabError(
                    f"port {port} (for {spec.name}) is already in use by another process; "
                    "stop it, or shift every port with OBSLAB_PORT_OFFSET"
                )


def _command(*names: str) -> str:
    """The absolute path of the first of ``names`` found, else the first name (not found)."""
    # nginx lives in /usr/sbin, which is not on every user's PATH.
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    return names[0]


def _token(path: Path, variable: str) -> str:
    """The token from ``$variable``, else the one kept in ``path``, else a new one.

    Kept in ``path`` (mode 0600) either way: Alertmanager reads the oncall token from there,
    and a restart keeps the same token.
    """
    kept = path.read_text().strip() if path.exists() else ""
    token = os.environ.get(variable) or kept or secrets.token_urlsafe(32)
    if token != kept:
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(token)
        os.replace(partial, path)
    return token


def _write_atomic(path: Path, text: str) -> None:
    # Prometheus watches its target files: a half-written list would drop every target.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _service_of(name: str) -> str:
    return name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"
