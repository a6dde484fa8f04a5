"""`slmdesk serve` starts from a model's saved defaults; a request's own values win."""

from __future__ import annotations

from slmdesk.models.library import Library
from slmdesk.models.model_settings import ModelSettings
from slmdesk.serve.generation import with_saved_system_prompt
from tests.serve.conftest import TINY, StartServer


def test_a_saved_system_prompt_leads_only_requests_without_one() -> None:
    saved = ModelSettings(system_prompt="Be brief.")
    user = [{"role": "user", "content": "hi"}]
    assert with_saved_system_prompt(user, saved)[0] == {"role": "system", "content": "Be brief."}
    own = [{"role": "system", "content": "Mine."}, *user]
    assert with_saved_system_prompt(own, saved) == own
    assert with_saved_system_prompt(user, ModelSettings()) == user


def test_served_model_uses_saved_context_and_system_prompt(
    library: Library, start_server: StartServer
) -> None:
    import pytest

    openai = pytest.importorskip("openai")
    long_prompt = "You answer questions about water. " * 20
    library.save_settings(TINY, ModelSettings(context_length=1024, system_prompt=long_prompt))
    server = start_server(model=TINY)
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client:
        plain = [{"role": "user", "content": "hello"}]
        with_saved = client.chat.completions.create(model=TINY, messages=plain, max_tokens=2)
        own = [{"role": "system", "content": "Short."}, *plain]
        with_own = client.chat.completions.create(model=TINY, messages=own, max_tokens=2)
        # the saved prompt is in the first request's prompt and not in the second's
        assert with_saved.usage.prompt_tokens > with_own.usage.prompt_tokens + 100
        too_long = client.with_options(max_retries=0)
        with pytest.raises(openai.BadRequestError, match="1,024 tokens of context"):
            too_long.chat.completions.create(model=TINY, messages=plain, max_tokens=2000)
