"""`RemoteEngine` and the connections store against real servers and a misbehaving one.

Real servers: llama-cpp-python's own ``llama_cpp.server`` and a second ``slmdesk serve`` process,
both on the tiny model. The fake server (tests/remote_servers.py) sends garbage, stalls, cuts
the stream or refuses, to show every failure ends bounded, as one sentence.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.chat.connections import (
    Connection,
    ConnectionsError,
    ConnectionStore,
    parse_remote_ref,
    remote_ref,
)
from slmdesk.chat.conversations import ConversationStore, Message
from slmdesk.chat.endpoint import EndpointError, api_base
from slmdesk.chat.remote import RemoteEngine, RemoteLimits, RemoteTarget, list_models
from slmdesk.chat.remote_errors import (
    RemoteAuthError,
    RemoteModelError,
    RemoteProtocolError,
    RemoteServerError,
    RemoteTimeoutError,
    RemoteUnreachableError,
)
from slmdesk.chat.session import ChatSession
from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.engine import SamplingSettings
from tests.remote_servers import (
    API_KEY,
    FakeServer,
    RunningServer,
    free_port,
)

HELLO = [{"role": "user", "content": "Say hello."}]
LONG = SamplingSettings(seed=1, max_tokens=400, temperature=1.0)


@pytest.fixture
def store() -> Iterator[ConversationStore]:
    with ConversationStore() as s:
        yield s


class Recorder:
    """A session listener that keeps the pieces and can stop after a few."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.pieces: list[str] = []
        self.stop = threading.Event()
        self.stop_after = stop_after

    def messages_removed(self, ids: list[int]) -> None:
        pass

    def user_saved(self, message: Message) -> None:
        pass

    def reply_started(self, message: Message) -> None:
        pass

    def text(self, message_id: int, piece: str) -> None:
        self.pieces.append(piece)
        if self.stop_after is not None and len(self.pieces) >= self.stop_after:
            self.stop.set()


def _one_sentence(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 300, text
    assert "Traceback" not in text and "\x1b" not in text, text
    return text


# -- addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "base"),
    [
        ("http://h:8080", "http://h:8080/v1"),
        ("http://h:8080/", "http://h:8080/v1"),
        (" HTTPS://h/v1/ ", "https://h/v1"),
        ("http://h/api/openai/v1", "http://h/api/openai/v1"),
    ],
)
def test_addresses_get_the_api_base(typed: str, base: str) -> None:
    assert api_base(typed) == base


@pytest.mark.parametrize(
    "bad", ["", "ftp://h", "file:///etc/passwd", "javascript:alert(1)", "http://", "http://h:99999",
            "http://user:pw@h", "http://h/ x"],
)  # fmt: skip
def test_bad_addresses_are_one_sentence(bad: str) -> None:
    with pytest.raises(EndpointError) as info:
        api_base(bad)
    _one_sentence(info.value)


# -- real servers --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["llama_server", "slmdesk_server"])
def test_streamed_chat_stop_and_regenerate_with_history_saved(
    which: str, request: pytest.FixtureRequest, store: ConversationStore
) -> None:
    server: RunningServer = request.getfixturevalue(which)
    key = API_KEY if which == "slmdesk_server" else ""
    assert server.model in list_models(RemoteTarget(server.url, "", key))
    engine = RemoteEngine(RemoteTarget(server.url, server.model, key, name="box"))
    conversation = store.create()
    session = ChatSession(engine, store, conversation.id, save_interval=0.0)

    recorder = Recorder()
    reply = session.reply("hello world", SamplingSettings(seed=1, max_tokens=16), recorder)
    assert recorder.pieces and reply.text == "".join(recorder.pieces)
    assert reply.timings["finish_reason"] in ("stop", "length")
    assert 1 <= reply.timings["generated_tokens"] <= 16
    saved = store.get(conversation.id).messages
    assert [(m.role, m.finished) for m in saved] == [("user", True), ("assistant", True)]
    assert saved[1].text == reply.text

    # stop mid-reply: what arrived is kept and marked cancelled, long before 400 tokens
    stopper = Recorder(stop_after=3)
    started = time.monotonic()
    stopped = session.reply("tell me more", LONG, stopper, stopper.stop)
    assert stopped.timings["finish_reason"] == "cancelled"
    assert len(stopper.pieces) >= 3 and stopped.text == "".join(stopper.pieces)
    assert stopped.timings["generated_tokens"] < 400
    assert time.monotonic() - started < 60
    saved = store.get(conversation.id).messages
    assert [m.role for m in saved] == ["user", "assistant", "user", "assistant"]
    assert saved[-1].text == stopped.text

    # regenerate the last reply: the old one is replaced, the question kept
    again = session.reply(None, SamplingSettings(seed=2, max_tokens=8), replace_from=saved[-1].id)
    saved = store.get(conversation.id).messages
    assert [m.role for m in saved] == ["user", "assistant", "user", "assistant"]
    assert saved[-1].text == again.text and saved[-1].timings == again.timings
    assert again.timings["finish_reason"] in ("stop", "length")
    engine.unload()


def test_text_completion_goes_to_the_completions_endpoint(llama_server: RunningServer) -> None:
    engine = RemoteEngine(RemoteTarget(llama_server.url, llama_server.model))
    pieces: list[str] = []
    result = engine.generate(
        [{"role": "user", "content": "Once upon"}], SamplingSettings(max_tokens=6), pieces.append,
        complete=True,
    )  # fmt: skip
    assert result.text == "".join(pieces)
    assert 1 <= result.timings.generated_tokens <= 6
    engine.unload()


def test_a_wrong_key_is_refused_in_one_sentence(slmdesk_server: RunningServer) -> None:
    with pytest.raises(RemoteAuthError) as info:
        list_models(RemoteTarget(slmdesk_server.url, "", "sk-wrong", name="box"))
    assert "box refused the API key (HTTP 401)" in _one_sentence(info.value)
    engine = RemoteEngine(RemoteTarget(slmdesk_server.url, "tiny", "", name="box"))
    with pytest.raises(RemoteAuthError) as info:
        engine.generate(HELLO)
    assert "needs an API key" in _one_sentence(info.value)
    engine.unload()


def test_an_unknown_model_is_named(slmdesk_server: RunningServer, store: ConversationStore) -> None:
    engine = RemoteEngine(RemoteTarget(slmdesk_server.url, "no-such-model", API_KEY, name="box"))
    conversation = store.create()
    session = ChatSession(engine, store, conversation.id)
    with pytest.raises(RemoteModelError) as info:
        session.reply("hi there", SamplingSettings(max_tokens=4))
    assert "box has no model named 'no-such-model'" in _one_sentence(info.value)
    # the user's message stays; no empty reply is left behind
    assert [m.role for m in store.get(conversation.id).messages] == ["user"]
    engine.unload()


# -- nothing there, or a server that misbehaves ------------------------------------------------


def test_an_unreachable_server_is_one_sentence() -> None:
    port = free_port()
    target = RemoteTarget(f"http://127.0.0.1:{port}", "m", name="laptop")
    with pytest.raises(RemoteUnreachableError) as info:
        list_models(target)
    assert _one_sentence(info.value) == "Cannot reach laptop: connection refused."
    engine = RemoteEngine(target)
    with pytest.raises(RemoteUnreachableError):
        engine.generate(HELLO)
    engine.unload()


def test_the_fake_servers_good_stream_and_the_request_it_got(fake: FakeServer) -> None:
    engine = RemoteEngine(RemoteTarget(fake.url, "fake-model", "sk-1"))
    pieces: list[str] = []
    result = engine.generate(HELLO, SamplingSettings(seed=5, max_tokens=9), pieces.append)
    assert pieces == ["Hello", " there", "!"] and result.text == "Hello there!"
    assert result.timings.finish_reason == "stop"
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-1"
    body = sent["body"]
    assert isinstance(body, dict)
    assert body["model"] == "fake-model" and body["stream"] is True
    assert body["messages"] == HELLO and body["max_tokens"] == 9 and body["seed"] == 5
    assert list_models(RemoteTarget(fake.url, "")) == ["fake-model"]  # the id 3 is ignored
    fake.mode = "json"  # a server that does not stream still answers
    assert engine.generate(HELLO).text == "whole"
    engine.unload()


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("garbage", RemoteProtocolError, "not JSON"),
        ("long-line", RemoteProtocolError, "broken stream"),
        ("cut", RemoteProtocolError, "closed the connection"),
        ("status-500", RemoteServerError, "server error (HTTP 500): nope"),
        ("status-400", RemoteServerError, "refused the request (HTTP 400)"),
        ("status-403", RemoteAuthError, "refused the API key"),
        ("status-404", RemoteModelError, "no model named"),
    ],
)
def test_misbehaving_servers_give_bounded_sentences(
    fake: FakeServer, mode: str, error: type[SlmdeskError], words: str
) -> None:
    fake.mode = mode
    engine = RemoteEngine(RemoteTarget(fake.url, "fake-model", "sk-1", name="fake"))
    with pytest.raises(error) as info:
        engine.generate(HELLO)
    assert words in _one_sentence(info.value)
    engine.unload()


def test_a_stalled_server_times_out_before_and_during_the_reply(
    fake: FakeServer, store: ConversationStore
) -> None:
    limits = RemoteLimits(first_byte_timeout=1.0, chunk_timeout=1.0)
    engine = RemoteEngine(RemoteTarget(fake.url, "fake-model", name="slow"), limits)
    fake.mode = "stall"
    started = time.monotonic()
    with pytest.raises(RemoteTimeoutError) as info:
        engine.generate(HELLO)
    assert "slow did not start answering within 1 s" in _one_sentence(info.value)
    assert time.monotonic() - started < 20

    fake.mode = "stall-after-one"
    conversation = store.create()
    session = ChatSession(engine, store, conversation.id)
    with pytest.raises(RemoteTimeoutError) as info:
        session.reply("hi", SamplingSettings())
    assert "sent nothing for 1 s" in _one_sentence(info.value)
    reply = store.get(conversation.id).messages[-1]  # the partial reply is kept, marked
    assert reply.text == "Hello" and reply.timings == {"finish_reason": "error"}
    engine.unload()


def test_stop_ends_a_reply_the_server_has_not_started(fake: FakeServer) -> None:
    fake.mode = "stall"
    engine = RemoteEngine(RemoteTarget(fake.url, "fake-model"))
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    result = engine.generate(HELLO, stop_event=stop)
    assert result.timings.finish_reason == "cancelled" and result.text == ""
    assert time.monotonic() - started < 20
    engine.unload()


def test_an_endless_reply_is_cut_at_the_size_limit(fake: FakeServer) -> None:
    fake.mode = "endless"
    limits = RemoteLimits(max_reply_bytes=200_000)
    engine = RemoteEngine(RemoteTarget(fake.url, "fake-model", name="chatty"), limits)
    with pytest.raises(RemoteProtocolError) as info:
        engine.generate(HELLO)
    assert "chatty sent more than" in _one_sentence(info.value)
    engine.unload()


@pytest.mark.parametrize("mode", ["models-huge", "models-garbage"])
def test_a_bad_model_list_is_refused(fake: FakeServer, mode: str) -> None:
    fake.mode = mode
    with pytest.raises(RemoteProtocolError) as info:
        list_models(RemoteTarget(fake.url, ""), RemoteLimits(max_models_bytes=512 * 1024))
    _one_sentence(info.value)


# -- the connections store -----------------------------------------------------------------------


def test_connections_are_kept_privately_and_validated(slmdesk_home: Path) -> None:
    connections = ConnectionStore()
    connections.save(Connection("gpu box", "http://10.0.0.5:8000", "sk-secret"))
    connections.save(Connection("ollama", "http://localhost:11434/v1"))
    path = connections.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [c.name for c in ConnectionStore().all()] == ["gpu box", "ollama"]
    assert ConnectionStore().get("GPU BOX").api_key == "sk-secret"
    assert "sk-secret" not in repr(connections.get("gpu box"))
    assert "sk-secret" not in repr(connections.get("gpu box").target("m"))  # e.g. in a LoadRequest
    assert connections.get("gpu box").public == {
        "name": "gpu box", "base_url": "http://10.0.0.5:8000", "has_key": True,
    }  # fmt: skip
    connections.save(Connection("gpu", "https://gpu.example/v1", "sk-2"), replace="gpu box")
    assert [c.name for c in connections.all()] == ["gpu", "ollama"]
    for bad in (
        Connection("ollama", "http://x"),  # a name taken
        Connection("x/y", "http://x"),
        Connection("z", "ftp://x"),
        Connection("z", "http://x", "two words"),
    ):
        with pytest.raises(SlmdeskError) as info:
            connections.save(bad)
        _one_sentence(info.value)
    connections.remove("ollama")
    assert [c.name for c in connections.all()] == ["gpu"]
    with pytest.raises(ConnectionsError):
        connections.get("ollama")


def test_a_damaged_connections_file_is_set_aside(slmdesk_home: Path) -> None:
    connections = ConnectionStore()
    connections.path.write_text("{not json", encoding="utf-8")
    assert connections.all() == []
    connections.save(Connection("a", "http://a"))
    assert [c.name for c in connections.all()] == ["a"]
    assert list(connections.path.parent.glob("connections.json.damaged-*"))


def test_remote_refs_round_trip() -> None:
    ref = remote_ref("gpu box", "llama3:8b/instruct")
    assert parse_remote_ref(ref) == ("gpu box", "llama3:8b/instruct")
    assert parse_remote_ref("/models/x.gguf") is None
    assert parse_remote_ref(None) is None
