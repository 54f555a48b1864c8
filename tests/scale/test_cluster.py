"""Two instances behind no sticky load balancer: any request may land on either."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from botserver.app import create_app
from botserver.config import Settings
from tests.api.wsclient import Socket
from tests.scale.cluster import Instance, run_cli, start_instances
from tests.scale.conftest import Deployment, history, new_account, open_session
from tests.support.signin import start_sign_in, submit_login


def is_reply(content: str) -> Any:
    return lambda f: f["type"] == "message" and f["content"] == content


async def post(url: str, headers: dict[str, str], session_id: str, content: str) -> Any:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        response = await client.post(
            f"/api/session/{session_id}/messages", json={"content": content}
        )
        assert response.status_code == 200, response.text
        return response.json()


def assert_well_ordered(messages: list[dict[str, Any]]) -> None:
    """seq 1..N, the greeting first, then each user message directly followed by its echo."""
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert messages[0]["content"] == "Hello! Say something."
    pairs = messages[1:]
    assert len(pairs) % 2 == 0
    for said, echoed in zip(pairs[::2], pairs[1::2], strict=True):
        assert said["sender"] == "user" and echoed["sender"] == "bot"
        assert echoed["content"] == f"You said: {said['content']}"


async def test_a_reply_produced_on_b_reaches_sockets_on_a_and_b_once_each(
    deployment: Deployment,
) -> None:
    a, b, headers = deployment.a, deployment.b, deployment.headers
    session_id = await open_session(a.url, headers)
    async with (
        await Socket.open(a.ws_url, deployment.token) as on_a,
        await Socket.open(b.ws_url, deployment.token) as on_b,
    ):
        for ws in (on_a, on_b):
            await ws.send({"type": "resume", "session_id": session_id, "after_seq": 0})
            assert (await ws.recv())["content"] == "Hello! Say something."

        await post(b.url, headers, session_id, "across")

        for ws in (on_a, on_b):
            frames = await ws.recv_until(is_reply("You said: across"))
            assert [(f["seq"], f["content"]) for f in frames] == [
                (2, "across"),
                (3, "You said: across"),
            ]
            await ws.expect_silence(0.3)


async def test_a_socket_message_on_a_is_answered_to_a_socket_on_b(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    session_id = await open_session(b.url, deployment.headers)
    async with (
        await Socket.open(a.ws_url, deployment.token) as on_a,
        await Socket.open(b.ws_url, deployment.token) as on_b,
    ):
        await on_b.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        await on_a.send({"type": "message", "session_id": session_id, "content": "hi"})
        ack, reply = await on_a.recv_until(is_reply("You said: hi"))
        assert (ack["type"], ack["seq"], reply["seq"]) == ("ack", 2, 3)
        frames = await on_b.recv_until(is_reply("You said: hi"))
        assert [f["seq"] for f in frames] == [2, 3]


async def test_resume_on_b_after_a_drop_on_a_misses_nothing(deployment: Deployment) -> None:
    a, b, headers = deployment.a, deployment.b, deployment.headers
    session_id = await open_session(a.url, headers)
    async with await Socket.open(a.ws_url, deployment.token) as on_a:
        await on_a.send({"type": "message", "session_id": session_id, "content": "one"})
        frames = await on_a.recv_until(is_reply("You said: one"))
        last_seen = frames[-1]["seq"]

    # While the user has no socket, both instances keep the conversation going.
    await post(a.url, headers, session_id, "two")
    await post(b.url, headers, session_id, "three")

    async with await Socket.open(b.ws_url, deployment.token) as on_b:
        await on_b.send({"type": "resume", "session_id": session_id, "after_seq": last_seen})
        missed = [await on_b.recv() for _ in range(4)]
        assert [(f["seq"], f["content"]) for f in missed] == [
            (4, "two"),
            (5, "You said: two"),
            (6, "three"),
            (7, "You said: three"),
        ]
        await on_b.send({"type": "message", "session_id": session_id, "content": "four"})
        frames = await on_b.recv_until(is_reply("You said: four"))
        assert frames[-1]["seq"] == 9


async def test_a_session_hammered_through_both_instances_stays_in_order(
    deployment: Deployment,
) -> None:
    a, b, headers = deployment.a, deployment.b, deployment.headers
    session_id = await open_session(a.url, headers)
    per_instance = 15

    async with await Socket.open(a.ws_url, deployment.token) as watcher:
        await watcher.send({"type": "resume", "session_id": session_id, "after_seq": 0})

        async def send_all(instance: Instance, name: str) -> None:
            async with httpx.AsyncClient(base_url=instance.url, headers=headers, timeout=60) as c:
                posts = [
                    c.post(f"/api/session/{session_id}/messages", json={"content": f"{name}{n}"})
                    for n in range(per_instance)
                ]
                for response in await asyncio.gather(*posts):
                    assert response.status_code == 200, response.text

        await asyncio.gather(send_all(a, "a"), send_all(b, "b"))

        total = 1 + 4 * per_instance
        stored = await history(b.url, headers, session_id)
        assert len(stored) == total
        assert_well_ordered(stored)
        assert {m["content"] for m in stored if m["sender"] == "user"} == {
            f"{name}{n}" for name in "ab" for n in range(per_instance)
        }

        # The live stream on a socket is the same sequence, in order, once.
        live = [await watcher.recv() for _ in range(total)]
        assert [f["seq"] for f in live] == list(range(1, total + 1))
        await watcher.expect_silence(0.3)


async def test_a_dialog_resumes_where_the_other_instance_left_it(deployment: Deployment) -> None:
    # Each instance remembers the dialog states it stored; after a turn on the
    # other instance, the one it remembers for the session is out of date.
    a, b, headers = deployment.a, deployment.b, deployment.headers
    session_id = await open_session(a.url, headers, bot="survey")

    asked = await post(b.url, headers, session_id, "Ann")
    assert [r["content"] for r in asked["replies"]] == ["How old are you, Ann?"]
    answered = await post(a.url, headers, session_id, "30")
    assert [r["content"] for r in answered["replies"]] == ["Ann is 30 years old."]


async def test_killing_an_instance_mid_conversation_loses_nothing(deployment: Deployment) -> None:
    headers = deployment.headers
    (doomed,) = await start_instances(deployment.env, deployment.logs, 1)
    try:
        session_id = await open_session(doomed.url, headers, bot="survey")
        async with await Socket.open(doomed.ws_url, deployment.token) as ws:
            await ws.send({"type": "message", "session_id": session_id, "content": "Ann"})
            await ws.recv_until(is_reply("How old are you, Ann?"))
            # A burst in flight when the process dies: some turns may be cut short.
            for n in range(5):
                await ws.send(
                    {"type": "message", "session_id": session_id, "content": f"not a number {n}"}
                )
            acked = (await ws.recv_until(lambda f: f["type"] == "ack"))[-1]
            doomed.kill()
    finally:
        doomed.kill()

    # The survivor has everything that was stored, gap-free, and the lock is free.
    stored = await history(deployment.a.url, headers, session_id)
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    assert any(m["seq"] == acked["seq"] and m["content"] == "not a number 0" for m in stored)
    async with await Socket.open(deployment.a.ws_url, deployment.token) as ws:
        await ws.send({"type": "message", "session_id": session_id, "content": "42"})
        frames = await ws.recv_until(is_reply("Ann is 42 years old."), timeout=10)
        assert frames[-1]["seq"] == len(stored) + 2


async def test_a_bot_reload_on_one_instance_takes_effect_on_the_others(
    deployment: Deployment,
) -> None:
    # A new bot appears in the (shared) bots folder: a copy of echo under another name.
    target = deployment.bots_dir / "parrot.gbai"
    shutil.copytree(deployment.bots_dir / "echo.gbai", target)
    (target / "echo.gbot").rename(target / "parrot.gbot")
    (target / "echo.gbdialog").rename(target / "parrot.gbdialog")

    # A third instance, in this process, reloads: what the admin reload endpoint does.
    env = deployment.env
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=env["BOTSERVER_DATABASE_URL"],
        redis_url=env["BOTSERVER_REDIS_URL"],
        bots_dir=deployment.bots_dir,
        secret_key=env["BOTSERVER_SECRET_KEY"],
    )
    reloader = create_app(settings)
    async with reloader.router.lifespan_context(reloader):
        await reloader.state.services.bots.reload()

    # Neither process reloaded by itself, yet both run the new bot's dialog.
    for instance in (deployment.a, deployment.b):
        replies = await talk_to_new_bot(instance, deployment.headers)
        assert replies == ["You said: polly"]


async def talk_to_new_bot(instance: Instance, headers: dict[str, str]) -> list[str]:
    """The replies to "polly", waiting up to 5 s for the reload to arrive."""
    for _ in range(50):
        session_id = await open_session(instance.url, headers, bot="parrot")
        async with httpx.AsyncClient(base_url=instance.url, headers=headers) as client:
            response = await client.post(
                f"/api/session/{session_id}/messages", json={"content": "polly"}
            )
        if response.status_code == 200 and response.json()["replies"]:
            return [reply["content"] for reply in response.json()["replies"]]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{instance.url} never ran the reloaded bot")


async def test_a_logout_through_b_ends_the_login_on_a_at_once(deployment: Deployment) -> None:
    a, b = deployment.a, deployment.b
    token = await new_account(deployment.env)
    headers = {"Authorization": f"Bearer {token}"}
    session_id = await open_session(a.url, headers)
    async with await Socket.open(a.ws_url, token) as on_a:
        await on_a.send({"type": "resume", "session_id": session_id, "after_seq": 0})
        assert (await on_a.recv())["content"] == "Hello! Say something."

        async with httpx.AsyncClient(base_url=b.url, headers=headers) as through_b:
            logged_out = await through_b.post("/auth/logout")
        assert logged_out.status_code == 200, logged_out.text

        async with httpx.AsyncClient(base_url=a.url, headers=headers) as through_a:
            for path in ("/auth/validate", f"/api/session/{session_id}/messages"):
                refused = await through_a.get(path)
                assert refused.status_code == 401, refused.text
                assert refused.json()["error"]["code"] == "UNAUTHORIZED"

        # The revocation reaches the socket on A over Redis: it closes without a frame sent.
        with pytest.raises(ConnectionClosed) as closed:
            await on_a.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_tokens_revoke_closes_the_logins_sockets_on_every_instance(
    deployment: Deployment,
) -> None:
    a, b = deployment.a, deployment.b
    token = await new_account(deployment.env)
    async with (
        await Socket.open(a.ws_url, token) as on_a,
        await Socket.open(b.ws_url, token) as on_b,
    ):
        for ws in (on_a, on_b):
            await ws.send({"type": "ping"})
            assert (await ws.recv())["type"] == "pong"

        said = await asyncio.to_thread(run_cli, deployment.env, "tokens", "revoke", token)
        assert said.strip() == "Token revoked."

        for ws in (on_a, on_b):
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_csrf_token_from_a_is_accepted_by_b_and_a_forged_one_is_not(
    deployment: Deployment,
) -> None:
    a, b, token = deployment.a, deployment.b, deployment.token
    async with httpx.AsyncClient(
        base_url=a.url, headers={"Cookie": f"botserver_session={token}"}
    ) as on_a:
        answer = await on_a.get("/auth/csrf")
        assert answer.status_code == 200, answer.text
        bots = (await on_a.get("/api/bots")).json()["bots"]
    csrf = answer.json()["csrf_token"]
    bot_id = next(bot["id"] for bot in bots if bot["name"] == "echo")

    async def create_session(cookie_csrf: str, header_csrf: str | None) -> httpx.Response:
        # What the page served from the public URL sends: both cookies, the echoed token.
        headers = {
            "Origin": deployment.public_url,
            "Cookie": f"botserver_session={token}; botserver_csrf={cookie_csrf}",
        }
        if header_csrf is not None:
            headers["X-CSRF-Token"] = header_csrf
        async with httpx.AsyncClient(base_url=b.url, headers=headers) as on_b:
            return await on_b.post("/api/session/create", json={"bot_id": bot_id})

    accepted = await create_session(csrf, csrf)
    assert accepted.status_code == 201, accepted.text

    forged = "0" * len(csrf)
    for refused in (await create_session(csrf, None), await create_session(forged, forged)):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "FORBIDDEN"
        assert "CSRF" in refused.json()["error"]["message"]


async def test_a_sign_in_started_on_a_finishes_on_b(deployment: Deployment) -> None:
    a, b, public = deployment.a, deployment.b, deployment.public_url
    name, password = f"walker{secrets.token_hex(3)}", "a long and private passphrase"
    await new_account(deployment.env, name, password)

    async with httpx.AsyncClient(base_url=a.url, timeout=30) as browser:
        authorize = await start_sign_in(browser, return_to="/chat")
        assert authorize.startswith(f"{public}/directory/authorize?")
        # The directory's pages come through the load balancer, from either instance.
        answer = await submit_login(browser, authorize, name, password)
        assert answer.status_code == 303, answer.text
        callback = answer.headers["location"]
        assert callback.startswith(f"{public}/auth/callback?")

        finished = await browser.get(b.url + callback.removeprefix(public))
        assert finished.status_code == 302, finished.text
        assert finished.headers["location"] == "/chat"

        # Signed in on both instances with the cookie B set.
        for instance in (a, b):
            me = await browser.get(f"{instance.url}/api/users/me")
            assert me.status_code == 200, me.text
            assert me.json()["username"] == name

        # The state was taken once, cluster-wide: the same callback on A is refused.
        replayed = await browser.get(a.url + callback.removeprefix(public))
        assert replayed.status_code == 400
        assert "already used" in replayed.json()["error"]["message"]


async def test_both_instances_spend_one_rate_budget(deployment: Deployment) -> None:
    # Anonymous requests spend the public budget of this client address (60 an hour).
    # This spends all of it for the hour, so it stays the last test of the module.
    async with (
        httpx.AsyncClient(base_url=deployment.a.url) as on_a,
        httpx.AsyncClient(base_url=deployment.b.url) as on_b,
    ):
        for _ in range(2):  # a second go only if the first crossed a window boundary
            first = await on_a.get("/api/bots")
            remaining = int(first.headers["X-RateLimit-Remaining"])
            answers = [first]
            for n in range(remaining + 1):
                answers.append(await (on_b if n % 2 == 0 else on_a).get("/api/bots"))
            if len({r.headers["X-RateLimit-Reset"] for r in answers}) == 1:
                break
        assert [r.status_code for r in answers[:-1]] == [401] * (remaining + 1)
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers[:-1]] == list(
            range(remaining, -1, -1)
        )
        refused = answers[-1]
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        # Spent on both: A refuses as well.
        assert (await on_a.get("/api/bots")).status_code == 429
