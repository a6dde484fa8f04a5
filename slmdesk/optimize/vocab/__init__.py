"""Vocabulary trimming: keep only the tokens texts in chosen languages can produce, rewrite the
GGUF with the smaller embedding, and prove the tokenization and the predictions unchanged.

Public API (no Qt; every function blocks its calling thread):

- `LANGUAGE_SETS`: the offered sets (name -> `LanguageSet` with a description).
- `trim_vocabulary(source, dest, language_set)` -> `TrimResult`.
- `verify_trim(original, trimmed, texts)` -> `TrimCheck` (tokenization identical as text, KL
  divergence over the kept tokens); `gate_failure(check)` says why a trim may not ship.
"""

from __future__ import annotations

from slmdesk.optimize.vocab.charsets import LANGUAGE_SETS, LanguageSet, charset_for, heldout_texts
from slmdesk.optimize.vocab.trim import TrimResult, trim_vocabulary
from slmdesk.optimize.vocab.verify import KLD_LIMIT, TrimCheck, gate_failure, verify_trim

__all__ = [
    "KLD_LIMIT",
    "LANGUAGE_SETS",
    "LanguageSet",
    "TrimCheck",
    "TrimResult",
    "charset_for",
    "gate_failure",
    "heldout_texts",
    "trim_vocabulary",
    "verify_trim",
]
