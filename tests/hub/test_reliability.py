"""Reliability and security of the Hub: the token is in no file and no log of a run, and redacted from messages and
log records, also when the Hub echoes it; a push to a Hub that never answers times out with the retry advice."""

from __future__ import annotations

import io
import logging
import socket
import time

import huggingface_hub
import pytest

from ser_hf.cli import main as cli_main
from ser_hf.hub.push import HubPushError, push_reports_to_hub
from ser_hf.train import main
from tests.conftest import HUB_TOKEN, last_error_line
from tests.recipe.test_parser import write_recipe

pytestmark = pytest.mark.reliability


PLANTED_TOKEN = "hf_plantedTOKENdoNotLeak0123456789"


def test_the_hub_token_is_in_no_file_and_no_log_of_a_run(tmp_path, tiny_ravdess, capfd, caplog):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        max_steps=2,
        output_dir=str(tmp_path / "run"),
        hub_token=PLANTED_TOKEN,
        logging_steps=1,
    )
    with caplog.at_level(logging.DEBUG, logger="ser_hf"):
        main([str(recipe)])
    files = [path for path in (tmp_path / "run").rglob("*") if path.is_file()]
    assert any(path.name == "training_args.bin" for path in files)  # the pickled arguments Trainer saves
    for path in files:
        assert PLANTED_TOKEN.encode() not in path.read_bytes(), path
    captured = capfd.readouterr()
    assert PLANTED_TOKEN not in captured.out + captured.err + caplog.text


@pytest.fixture
def silent_hub():
    """An endpoint that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_push_to_a_hub_that_never_answers_times_out_with_the_retry_advice(tmp_path, monkeypatch, capsys, silent_hub):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    monkeypatch.setenv("SER_HF_HUB_TIMEOUT", "0.5")
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", silent_hub)
    started = time.monotonic()
    assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 2
    assert time.monotonic() - started < 10
    assert last_error_line(capsys) == (
        f"ser-hf: error: The Hub at {silent_hub} did not answer within 0.5 s while pushing {run_dir} (set "
        f"SER_HF_HUB_TIMEOUT to wait longer). Nothing in {run_dir} was changed; to try again, run `ser-hf push "
        f"{run_dir} --repo-id me/ser-demo --no-card`."
    )
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.json"]

    reports = tmp_path / "reports"
    (reports / "ravdess-test").mkdir(parents=True)
    (reports / "ravdess-test" / "eval_report.json").write_text("{}")
    with pytest.raises(HubPushError) as error:
        push_reports_to_hub(reports, "me/ser-reports", endpoint=silent_hub)
    assert str(error.value).endswith(
        f"to try again, run `hf upload me/ser-reports {reports} reports --repo-type dataset`."
    )
    monkeypatch.setenv("SER_HF_HUB_TIMEOUT", "soon")
    assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 2
    assert last_error_line(capsys) == (
        "ser-hf: error: SER_HF_HUB_TIMEOUT='soon': give the seconds to wait for the "
        "Hub, a positive number (default 60)."
    )


@pytest.fixture
def trickling_hub():
    """An endpoint that answers every request at once with its headers, then one byte of body every 0.2 s (for 30 s
    at most): each read is quick, the answer never ends."""
    import threading

    stop = threading.Event()

    def answer(connection):
        with connection:
            connection.settimeout(30)
            try:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                )
                for _ in range(150):
                    if stop.wait(0.2):
                        return
                    connection.sendall(b" ")
            except OSError:
                return

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.5)

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        server.close()


def test_a_push_to_a_hub_that_trickles_its_answer_stops_at_the_timeout(tmp_path, monkeypatch, capsys, trickling_hub):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    monkeypatch.setenv("SER_HF_HUB_TIMEOUT", "1")
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", trickling_hub)
    started = time.monotonic()
    assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 2
    # Each byte came well within the per-read limit: only a deadline on the whole answer stops it.
    assert time.monotonic() - started < 20  # the answer would go on for 30 s
    assert last_error_line(capsys) == (
        f"ser-hf: error: The Hub at {trickling_hub} did not answer within 1 s while pushing {run_dir} (set "
        f"SER_HF_HUB_TIMEOUT to wait longer). Nothing in {run_dir} was changed; to try again, run `ser-hf push "
        f"{run_dir} --repo-id me/ser-demo --no-card`."
    )
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.json"]


def test_a_hub_error_that_echoes_the_token_is_printed_redacted(tmp_path, monkeypatch, capsys, caplog):
    from tests.hub_server import LocalHub

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    with LocalHub(token=HUB_TOKEN) as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        hub.fail("POST", "/api/repos/create", status=400, echo_authorization=True)
        with caplog.at_level(logging.DEBUG):
            assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 2
            logging.getLogger("ser_hf.hub.push").warning("token %s in a record", HUB_TOKEN)
    err = capsys.readouterr().err
    assert "Request rejected; it carried Authorization: Bearer <REDACTED>" in err and "ser-hf: error: " in err
    assert HUB_TOKEN not in err + caplog.text and "token <REDACTED> in a record" in caplog.text


def test_tokens_are_redacted_from_messages_and_log_records():
    from ser_hf.hub.token import TokenRedactingFilter, redact_tokens

    text = (
        "401 for Authorization: Bearer s3cret-value; hf_abcdefghijklmnopqrstuvwxyz012345 and the user's own "
        "my-own-token; hf_hub_download and api_org_ABCDEFGHIJKLMNOPQRST stay/go"
    )
    assert redact_tokens(text, tokens=["my-own-token"]) == (
        "401 for Authorization: Bearer <REDACTED>; <REDACTED> and the user's own <REDACTED>; hf_hub_download and "
        "<REDACTED> stay/go"
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TokenRedactingFilter(tokens=["my-own-token"]))
    logger = logging.getLogger("ser_hf.test_redaction")
    logger.addHandler(handler)
    try:
        logger.error("pushing with %s", "my-own-token")
        try:
            raise ValueError("server said Bearer my-own-token")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert "my-own-token" not in stream.getvalue()
    assert "pushing with <REDACTED>" in stream.getvalue() and "server said Bearer <REDACTED>" in stream.getvalue()


#: A command whose error echoes the token three ways: in its message, in its args, and in the error that caused it.
ECHOING_COMMAND = f"""
import sys
from ser_hf.cli.errors import run_reporting_errors

def push():
    try:
        raise ConnectionError("500; request headers: authorization: Bearer hf_echoedBEARERvalue0123456789")
    except ConnectionError as cause:
        raise ValueError("push failed for {HUB_TOKEN}", {{"authorization": "Bearer {HUB_TOKEN}"}}) from cause

def bug():
    raise RuntimeError("unexpected state", "{HUB_TOKEN}")

sys.exit(run_reporting_errors(push if sys.argv[1] == "push" else bug, "ser-hf", debug=sys.argv[2] == "debug"))
"""


@pytest.mark.parametrize(
    "command, debug, environment",
    [("push", "debug", {}), ("push", "plain", {"SER_HF_DEBUG": "1"}), ("bug", "plain", {})],
    ids=["--debug", "SER_HF_DEBUG=1", "a bug's traceback"],
)
def test_no_traceback_prints_the_hub_token(tmp_path, command, debug, environment):
    """--debug and SER_HF_DEBUG=1 print the traceback, chained cause and args included, with every token redacted;
    so does the traceback of an error that is not an error of input."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    script = tmp_path / "echoing.py"
    script.write_text(ECHOING_COMMAND)
    environ = {k: v for k, v in os.environ.items() if k != "SER_HF_DEBUG"}
    finished = subprocess.run(
        [sys.executable, str(script), command, debug],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, "HF_TOKEN": HUB_TOKEN, "HF_HUB_OFFLINE": "1", **environment},
    )
    assert finished.returncode == 1
    assert "Traceback (most recent call last)" in finished.stderr
    assert HUB_TOKEN not in finished.stderr and "hf_echoedBEARERvalue" not in finished.stderr
    if command == "push":
        assert "authorization: Bearer <REDACTED>" in finished.stderr  # the cause is printed, redacted
        assert finished.stderr.strip().splitlines()[-1] == (
            "ValueError: ('push failed for <REDACTED>', {'authorization': 'Bearer <REDACTED>'})"
        )
    else:
        assert finished.stderr.strip().splitlines()[-1] == "RuntimeError: ('unexpected state', '<REDACTED>')"
