"""bench.wrk: the Lua script wrk runs, and the result line it prints."""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from app.model.data import APPLICANT_FEATURES
from app.scoring import validation
from bench import wrk

DONE_LINE = (
    'OBSLAB_WRK {"requests":1200,"duration_us":4000000,"connect":1,"read":2,"write":0,'
    '"status":3,"timeout":4,"p50_us":2500,"p99_us":41000}'
)


def test_parse_reads_the_result_line_among_other_output() -> None:
    result = wrk.parse(f"Running 4s test @ http://x\n{DONE_LINE}\nRequests/sec: 300\n")

    assert result == wrk.WrkResult(requests=1200, seconds=4.0, errors=10, p50=0.0025, p99=0.041)
    assert result.rate == 300.0


def test_parse_without_a_result_line_says_so() -> None:
    with pytest.raises(ValueError, match="no OBSLAB_WRK line"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_applicant_bodies_pass_the_scoring_validation() -> None:
    bodies = wrk.applicant_bodies(50)

    applicants = [validation.applicant(orjson.loads(body)) for body in bodies]
    assert len({applicant.customer_id for applicant in applicants}) > 1
    assert all(set(applicant.features) == set(APPLICANT_FEATURES) for applicant in applicants)
    assert wrk.applicant_bodies(50) == bodies  # seeded: every run posts the same bodies


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.seen: list[tuple[str, str, bytes]] = []


class _Record(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make setup)")
def test_the_script_posts_every_body_in_turn_and_reports(
    recorder: _Recorder, tmp_path: Path
) -> None:
    bodies = [b'{"customer_id":1}', b'{"customer_id":2,"x":"]]"}']
    script = tmp_path / "predict.lua"
    script.write_text(wrk.predict_script(bodies))
    host, port = recorder.server_address[:2]

    result = wrk.run(f"http://{host}:{port}", script, connections=1, seconds=1)

    assert result.requests >= 2
    assert result.errors == 0
    assert result.p50 <= result.p99
    assert {(path, kind) for path, kind, _ in recorder.seen} == {("/predict", "application/json")}
    posted = [body for _, _, body in recorder.seen]
    assert set(posted) == set(bodies)
    assert all(first != second for first, second in itertools.pairwise(posted))
