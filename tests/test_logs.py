"""Log lines carry the request id; production writes JSON lines; tokens never appear."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from botserver.logs import RequestIdFilter, configure_logging, request_id_var
from tests.conftest import MakeAccount


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("json_lines", [True, False])
def test_every_line_carries_the_request_id(restore_logging: None, json_lines: bool) -> None:
    configure_logging("INFO", json_lines=json_lines)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)

    token = request_id_var.set("req-42")
    try:
        logging.getLogger("botserver.test").info("Something happened to %s.", "someone")
    finally:
        request_id_var.reset(token)

    line = stream.getvalue().strip()
    if json_lines:
        record = json.loads(line)
        assert record["request_id"] == "req-42"
        assert record["message"] == "Something happened to someone."
        assert record["level"] == "INFO" and record["logger"] == "botserver.test"
    else:
        assert "[req-42]" in line and "Something happened to someone." in line


def test_lines_outside_a_request_say_so() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"


async def test_tokens_never_reach_the_log(
    client: httpx.AsyncClient, make_account: MakeAccount, caplog: pytest.LogCaptureFixture
) -> None:
    account = await make_account("secretive")
    forged = "bst_forged-token-value-that-must-not-be-logged"
    with caplog.at_level(logging.DEBUG):
        await client.get("/auth/validate", headers=account.headers)
        await client.get("/auth/validate", headers={"Authorization": f"Bearer {forged}"})
        await client.get("/auth/validate", headers={"Cookie": f"botserver_session={forged}"})
        await client.get(f"/nope?token={forged}")
    # The test's own HTTP client logs the URLs it requested; only the server's lines count.
    text = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert account.token not in text
    assert forged not in text
