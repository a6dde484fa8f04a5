"""A `ModelHost` over an engine someone else loads (the window's chat), and a key kept private."""

from __future__ import annotations

from slmdesk.llama.engine import ChatEngine
from slmdesk.models.library import Library
from slmdesk.serve.inference import ModelHost
from slmdesk.serve.runner import ServeConfig
from tests.serve.conftest import TINY


def test_the_host_names_and_keeps_a_model_the_chat_loaded(library: Library) -> None:
    engine = ChatEngine()
    host = ModelHost(library, engine=engine)
    try:
        assert host.loaded_name() is None
        engine.load(library.get(TINY).path, context_length=512)  # the chat loads it
        loaded = engine.loaded
        assert host.loaded_name() == TINY
        assert host.ensure(None) == TINY  # a request naming no model uses it
        assert host.ensure(TINY) == TINY
        assert engine.loaded is loaded  # not loaded again
        engine.unload()  # the user ejects it
        assert host.loaded_name() is None
    finally:
        host.close()


def test_the_api_key_is_not_in_the_config_repr() -> None:
    assert "sk-secret-1" not in repr(ServeConfig(host="0.0.0.0", api_key="sk-secret-1"))
