"""The chat-completions client against a stand-in OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from botserver.engine.llm import LlmClient, LlmError, LlmSettings
from tests.support.fake_llm import KEY, MODEL, FakeLlm, canned_answer, pieces
from tests.support.services import find_free_port


@pytest.fixture
def fake() -> Iterator[FakeLlm]:
    server = FakeLlm().start()
    yield server
    server.stop()


def client_for(fake: FakeLlm, **rows: str) -> LlmClient:
    config = {"llm-url": fake.url, "llm-model": MODEL, "llm-key": KEY, **rows}
    return LlmClient(LlmSettings.from_config(config))


async def collect(client: LlmClient, prompt: str) -> list[str]:
    return [piece async for piece in client.stream(prompt)]


# -- configuration -----------------------------------------------------------


def test_settings_come_from_the_config_rows() -> None:
    settings = LlmSettings.from_config(
        {
            "LLM-URL": "http://127.0.0.1:11434/v1/",
            "llm-model": "llama3",
            "llm-system": "You are terse.",
            "llm-timeout": "12.5",
        }
    )
    assert settings.endpoint == "http://127.0.0.1:11434/v1/chat/completions"
    assert (settings.model, settings.system, settings.timeout) == ("llama3", "You are terse.", 12.5)
    assert settings.key is None


def test_the_key_may_come_from_an_environment_variable() -> None:
    rows = {"llm-url": "http://127.0.0.1:1/v1", "llm-model": "m", "llm-key-env": "POET_KEY"}
    assert LlmSettings.from_config(rows, {"POET_KEY": "secret-1"}).key == "secret-1"
    with pytest.raises(LlmError, match="environment variable POET_KEY"):
        LlmSettings.from_config(rows, {})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({}, "This bot has no llm-url configured"),
        ({"llm-url": "http://127.0.0.1:1/v1"}, "no llm-model configured"),
        ({"llm-url": "file:///etc/passwd", "llm-model": "m"}, "http:// or https://"),
        ({"llm-url": "http://127.0.0.1:1", "llm-model": "m", "llm-timeout": "soon"}, "seconds"),
        ({"llm-url": "http://127.0.0.1:1", "llm-model": "m", "llm-timeout": "0"}, "seconds"),
    ],
)
def test_unusable_configuration_is_explained(rows: dict[str, str], message: str) -> None:
    with pytest.raises(LlmError, match=message):
        LlmSettings.from_config(rows)


def test_credentials_in_the_url_are_kept_out_of_it() -> None:
    settings = LlmSettings.from_config(
        {"llm-url": "https://bob:hunter2@llm.example.com/v1", "llm-model": "m", "llm-key": "k9"}
    )
    assert settings.url == "https://llm.example.com/v1"
    assert settings.where == "https://llm.example.com"
    assert "hunter2" not in repr(settings) and "k9" not in repr(settings)


# -- answers ------------------------------------------------------------------


async def test_a_streamed_answer_arrives_piece_by_piece(fake: FakeLlm) -> None:
    client = client_for(fake, **{"llm-system": "Answer in verse."})
    received = await collect(client, "the moon")
    assert received == pieces(canned_answer("the moon"))
    assert len(received) > 10

    request = fake.requests[-1]
    assert request["stream"] is True and request["model"] == MODEL
    assert request["messages"] == [
        {"role": "system", "content": "Answer in verse."},
        {"role": "user", "content": "the moon"},
    ]
    assert fake.headers[-1]["Authorization"] == f"Bearer {KEY}"


async def test_a_whole_answer_can_be_asked_for_without_streaming(fake: FakeLlm) -> None:
    assert await client_for(fake).complete("the sun") == canned_answer("the sun")
    assert fake.requests[-1]["stream"] is False
    assert fake.requests[-1]["messages"] == [{"role": "user", "content": "the sun"}]


async def test_answers_stop_at_the_length_limit(fake: FakeLlm) -> None:
    client = client_for(fake)
    client.settings = replace(client.settings, max_chars=30)
    received = await collect(client, "rain")
    assert "".join(received) == canned_answer("rain")[:30]
    assert await client.complete("rain") == canned_answer("rain")[:30]


# -- failures -----------------------------------------------------------------


async def test_a_wrong_key_is_reported_without_repeating_it(fake: FakeLlm) -> None:
    fake.key = "the-key-the-server-wants"
    client = client_for(fake, **{"llm-key": "sk-mine-very-secret"})
    for call in (client.complete("x"), collect(client, "x")):
        with pytest.raises(LlmError) as caught:
            await call
        message = str(caught.value)
        assert message.startswith(f"The LLM endpoint at http://127.0.0.1:{fake.port} answered 401")
        assert "Incorrect API key provided: ***" in message
        assert "sk-mine-very-secret" not in message


async def test_an_unknown_model_is_reported(fake: FakeLlm) -> None:
    with pytest.raises(LlmError, match="answered 404 Not Found: The model 'gpt-9' does not"):
        await client_for(fake, **{"llm-model": "gpt-9"}).complete("x")


async def test_a_connection_dropped_midway_fails_after_the_pieces_so_far(fake: FakeLlm) -> None:
    fake.fail_after = 4
    received: list[str] = []
    with pytest.raises(LlmError, match="broke off the answer"):
        async for piece in client_for(fake).stream("snow"):
            received.append(piece)
    assert received == pieces(canned_answer("snow"))[:4]


async def test_an_error_event_midway_is_reported(fake: FakeLlm) -> None:
    fake.fail_after, fake.fail_with = 2, "error"
    with pytest.raises(LlmError, match="failed while answering: The model crashed"):
        await collect(client_for(fake), "fog")


async def test_a_silent_endpoint_times_out(fake: FakeLlm) -> None:
    fake.stall = 1.0
    client = client_for(fake, **{"llm-timeout": "0.2"})
    with pytest.raises(LlmError, match=r"did not answer within 0\.2 seconds"):
        await client.complete("x")
    with pytest.raises(LlmError, match=r"did not answer within 0\.2 seconds"):
        await collect(client, "x")


async def test_a_trickling_stream_is_bounded_by_the_timeout_as_a_whole(fake: FakeLlm) -> None:
    fake.delay = 0.05  # every piece is quick, but the whole answer takes over a second
    with pytest.raises(LlmError, match=r"did not answer within 0\.4 seconds"):
        await collect(client_for(fake, **{"llm-timeout": "0.4"}), "hail")


async def test_an_unreachable_endpoint_is_reported() -> None:
    url = f"http://127.0.0.1:{find_free_port()}/v1"
    client = LlmClient(LlmSettings.from_config({"llm-url": url, "llm-model": "m"}))
    with pytest.raises(LlmError, match="could not be reached"):
        await client.complete("x")
