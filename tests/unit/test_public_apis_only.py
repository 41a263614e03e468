"""The project's code uses other packages through their public APIs only.

An AST check of every module of app/, obslab/, alerts/, dashboards/, loadgen/ and bench/:

- no import of a private module (``opentelemetry.sdk._logs``) or private name of another
  package, and no private module named in a string (a logger name such as
  ``"opentelemetry.sdk._shared_internal"``);
- no ``_private`` attribute that the project does not define itself, read, written or named
  through ``getattr``: on an object from another package (``tracer.span_processor.
  _span_processors``), or inherited from another package's class (``self._batch_processor``
  in a subclass of the SDK's ``BatchSpanProcessor``);
- no OpenTelemetry ``SpanContext`` unpacked as the 6-tuple it happens to be built on: its
  fields are properties (``trace_id``, ``span_id``, ...), its layout is not API.

The check cannot know types. A private name counts as the project's own when the project
defines it somewhere (a function, class, module name, parameter, or an attribute set on
``self`` or ``cls``); that misses another package's private attribute that happens to share a
name with one of the project's, which is why the names in use are few and specific.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("app", "obslab", "alerts", "dashboards", "loadgen", "bench")

#: Underscored names that are documented public API.
PUBLIC_UNDERSCORED = {
    # namedtuple's methods and fields, underscored so that they cannot clash with a field.
    "_asdict",
    "_replace",
    "_fields",
    "_make",
    "_field_defaults",
    # os._exit, the documented way for a forked child to end without cleanup.
    "_exit",
}

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.\w+)+")

#: How many fields a SpanContext's underlying tuple has.
SPAN_CONTEXT_FIELDS = 6

#: The commit before issue 26's rework, whose telemetry reached into private parts.
BEFORE_REWORK = "874d328"


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORED


def is_foreign_module(dotted: str) -> bool:
    top = dotted.split(".")[0]
    return top not in PROJECT_PACKAGES and top != "tests"


def names_private_module(value: object) -> bool:
    """Whether ``value`` is the dotted name of an installed package's private module."""
    return (
        isinstance(value, str)
        and _DOTTED.fullmatch(value) is not None
        and is_foreign_module(value)
        and any(map(is_private, value.split(".")[1:]))
        and importlib.util.find_spec(value.split(".")[0]) is not None
    )


def unpacks_a_span_context(node: ast.Assign | ast.For) -> bool:
    """Whether ``node`` unpacks something other than a literal into SpanContext's six fields."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    value = node.value if isinstance(node, ast.Assign) else node.iter
    return not isinstance(value, ast.Tuple | ast.List) and any(
        isinstance(target, ast.Tuple | ast.List) and len(target.elts) == SPAN_CONTEXT_FIELDS
        for target in targets
    )


def own_private_names(trees: Iterable[ast.AST]) -> set[str]:
    """Private names the project itself defines."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                names.add(node.attr)
    return {name for name in names if is_private(name)}


def violations(tree: ast.AST, own: set[str]) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for each reach into another package's private parts in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_foreign_module(alias.name) and any(map(is_private, alias.name.split("."))):
                    yield node.lineno, f"imports the private module {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not is_foreign_module(node.module):
                continue
            if any(map(is_private, node.module.split("."))):
                yield node.lineno, f"imports from the private module {node.module}"
            for alias in node.names:
                if is_private(alias.name):
                    yield node.lineno, f"imports the private name {node.module}.{alias.name}"
        elif isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            yield node.lineno, f"uses the private attribute {node.attr} of another package"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
            and node.args[1].value not in own
        ):
            yield node.lineno, f"{node.func.id}() on the private attribute {node.args[1].value}"
        elif isinstance(node, ast.Constant) and names_private_module(node.value):
            yield node.lineno, f"names the private module {node.value}"
        elif isinstance(node, ast.Assign | ast.For) and unpacks_a_span_context(node):
            yield node.lineno, "unpacks a SpanContext as a tuple"


def project_modules() -> dict[Path, ast.AST]:
    return {
        path: ast.parse(path.read_text(), filename=str(path))
        for package in PROJECT_PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }


def test_the_project_uses_other_packages_public_apis_only() -> None:
    modules = project_modules()
    own = own_private_names(modules.values())

    found = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {what}"
        for path, tree in modules.items()
        for line, what in violations(tree, own)
    ]

    assert found == []


#: What the telemetry did before issue 26, one reach apiece, each as it was written.
OFFENDERS = {
    "an inherited private attribute": """
class DropCountingBatchSpanProcessor(BatchSpanProcessor):
    def __init__(self, exporter, dropped):
        super().__init__(exporter)
        batch = self._batch_processor
        batch._metrics = _DropHook(batch._metrics, dropped)
""",
    "a private attribute through getattr": """
def _is_default(textmap):
    kinds = [type(each) for each in getattr(textmap, "_propagators", ())]
""",
    "a private module named as a logger": """
_QUIETED_LOGGERS = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)
""",
    "a private method of another package's object": """
def _current_request():
    return request._get_current_object()
""",
    "a private attribute of another package's object": """
def span_processors(tracer):
    return tracer.span_processor._span_processors
""",
    "an import of a private module": """
from opentelemetry.sdk._logs import LoggerProvider
""",
    "a private module imported whole": """
import opentelemetry.sdk._shared_internal
""",
    "a private name imported": """
from argparse import _SubParsersAction
""",
    "a SpanContext unpacked as a tuple": """
def exemplar(span):
    trace_id, _, _, flags, _, _ = span.get_span_context()
""",
}


@pytest.mark.parametrize("source", OFFENDERS.values(), ids=OFFENDERS)
def test_each_kind_of_reach_is_caught(source: str) -> None:
    tree = ast.parse(source)
    assert list(violations(tree, own_private_names([tree]))) != []


def test_the_project_s_own_private_names_are_its_own() -> None:
    tree = ast.parse(
        """
class Store:
    def __init__(self):
        self._rows = []

    def _add(self, row):
        self._rows.append(row)

def use(store):
    store._add(1)
    return getattr(store, "_rows")
"""
    )
    assert list(violations(tree, own_private_names([tree]))) == []


def git_show(revision: str, path: str) -> str | None:
    shown = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "show", f"{revision}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else None


@pytest.mark.parametrize(
    "path",
    [
        "app/telemetry/tracing.py",
        "app/telemetry/propagation.py",
        "app/telemetry/request_hooks.py",
        "app/telemetry/logging.py",
        "app/telemetry/otlp_json.py",
        "app/telemetry/spans.py",
        "obslab/inspect.py",
    ],
)
def test_the_telemetry_before_the_rework_fails_the_check(path: str) -> None:
    source = git_show(BEFORE_REWORK, path)
    if source is None:
        pytest.skip(f"{BEFORE_REWORK} is not in this clone's history")
    modules = project_modules()
    tree = ast.parse(source)
    own = own_private_names([*modules.values(), tree])

    assert list(violations(tree, own)) != []
