"""The Hugging Face token: owner-only file, environment first, never shown whole."""

from __future__ import annotations

import stat

import pytest

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.hub import token as hf_token


def test_token_saved_owner_only_and_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert hf_token.load_token() is None
    hf_token.save_token("  hf_abcdefghijklmnop  ")
    mode = stat.S_IMODE(paths.token_path().stat().st_mode)
    assert mode == 0o600
    assert hf_token.load_token() == "hf_abcdefghijklmnop"
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    assert hf_token.load_token() == "hf_from_environment"
    monkeypatch.delenv("HF_TOKEN")
    hint = hf_token.token_hint(hf_token.load_token())
    assert hint == "hf_…mnop" and "abcdefghij" not in hint
    hf_token.clear_token()
    assert hf_token.load_token() is None


@pytest.mark.parametrize("bad", ["", "   ", "hf_two words"])
def test_bad_tokens_refused(bad: str) -> None:
    with pytest.raises(SlmdeskError, match="one word"):
        hf_token.save_token(bad)
