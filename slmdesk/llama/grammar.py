"""Grammars that force a reply to be JSON, or JSON matching a schema (llama.cpp GBNF).

The local server's ``response_format`` is enforced while sampling: every token the model may
pick must keep the reply a prefix of a valid document, so the finished reply parses. llama.cpp
rejects a grammar it cannot parse by returning no sampler (which would crash a sampler chain),
so every grammar is tried once against the loaded model's vocabulary before it is used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from slmdesk.common.errors import SlmdeskError

# Schemas are user input: bound their size before the converter walks them.
MAX_SCHEMA_BYTES = 64 * 1024


class GrammarError(SlmdeskError):
    """A JSON schema that cannot be turned into a grammar (unsupported or invalid)."""


def json_object_grammar() -> Any:
    """A grammar for any JSON object (``response_format: json_object``)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    return LlamaGrammar.from_string(JSON_GBNF, verbose=False)


def json_schema_grammar(schema: Mapping[str, Any]) -> Any:
    """A grammar for documents matching ``schema`` (``response_format: json_schema``).

    Raises:
        GrammarError: the schema is too large, not JSON, or uses what the converter lacks.
    """
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    try:
        text = json.dumps(dict(schema))
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"The JSON schema is not valid JSON: {exc}.") from None
    if len(text) > MAX_SCHEMA_BYTES:
        raise GrammarError(f"The JSON schema is larger than {MAX_SCHEMA_BYTES // 1024} KB.")
    try:
        gbnf = json_schema_to_gbnf(text)
    except RecursionError:
        raise GrammarError("The JSON schema is nested too deeply.") from None
    except Exception as exc:
        raise GrammarError(f"The JSON schema cannot be enforced: {exc}.") from None
    return LlamaGrammar.from_string(gbnf, verbose=False)


def check_grammar(engine: Any, grammar: Any) -> None:
    """Raise `GrammarError` when llama.cpp cannot parse ``grammar`` for ``engine``'s model.

    Runs on the inference thread (it needs the loaded model's vocabulary).
    """
    import llama_cpp

    vocab = engine._llm._model.vocab
    sampler = llama_cpp.llama_sampler_init_grammar(
        vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
    )
    if not sampler:
        raise GrammarError("The JSON schema gave a grammar llama.cpp cannot use.")
    llama_cpp.llama_sampler_free(sampler)
