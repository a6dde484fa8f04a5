"""A chat session with one local model through llama.cpp: load, stream, stop, reuse the prompt.

`ChatEngine` owns a ``llama_cpp.Llama``. It is meant to live on one worker thread (the app's
inference thread): `load`, `generate` and `unload` run there and block; the only things another
thread does are setting the ``stop_event`` passed to `generate` (checked between tokens, so a
reply stops within one token) or the ``cancel`` event passed to `load`. Callbacks
(``on_token``, ``progress``) run on the calling (worker) thread.

Prompt-prefix reuse: the engine remembers which tokens sit in llama.cpp's KV cache. A follow-up
turn renders the whole conversation again, but only the tokens after the longest common prefix
with the cache are evaluated, so turn 10 starts about as fast as turn 1. The reply's own tokens
are kept as the model produced them (re-tokenizing the reply's text could split it differently
and break the match).
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import functools
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from slmdesk.common.errors import InvalidModelError, SlmdeskError
from slmdesk.llama import probe
from slmdesk.llama.devices import gpu_free_bytes
from slmdesk.models.chat_format import FAMILIES, ChatFormat
from slmdesk.models.completion import CompletionFormat
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info
from slmdesk.models.hardware import (
    context_for_load,
    estimate_with_offload,
    machine_info,
    plan_offload,
)
from slmdesk.models.template_sandbox import BoundedTemplate, Budget, Limits, TemplateLimitError

log = logging.getLogger(__name__)

MIN_CONTEXT = 256
# Room kept free for the reply when fitting history into the context: the smaller of the
# reply's token limit and this share of the context.
REPLY_ROOM_SHARE = 4
# Messages are rendered and tokenized in prompt-sized batches; a stop request is honoured
# between batches while the prompt is evaluated.
_PROMPT_CHUNK = 256

TokenCallback = Callable[[str], None]
LoadProgress = Callable[[float], "bool | None"]


class EngineError(SlmdeskError):
    """The engine cannot do what was asked (no model, empty message, context too small...)."""


class LoadCancelled(EngineError):
    """Loading a model was cancelled by the user."""


class ContextOverflowError(EngineError):
    """A single message does not fit in the model's context."""


# -- llama.cpp log capture ------------------------------------------------------------------------

_LLAMA_LOG: deque[str] = deque(maxlen=200)
_LLAMA_LOG_LOCK = threading.Lock()
_log_callback: Any = None


def _install_llama_log() -> None:
    """Route llama.cpp's own log lines into a small buffer (to explain load failures) and debug log."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        try:
            line = text.decode("utf-8", errors="replace").rstrip()
        except Exception:
            return
        if line:
            with _LLAMA_LOG_LOCK:
                _LLAMA_LOG.append(line)
            if level in (2, 3):  # warnings and errors
                log.debug("llama.cpp: %s", line)

    _log_callback = _callback  # keep a reference: llama.cpp calls it for the life of the process
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def _log_mark() -> int:
    with _LLAMA_LOG_LOCK:
        _LLAMA_LOG.append("\x00mark")
        return len(_LLAMA_LOG)


def _log_since(mark: int) -> list[str]:
    with _LLAMA_LOG_LOCK:
        lines = list(_LLAMA_LOG)
    try:
        start = len(lines) - 1 - lines[::-1].index("\x00mark") + 1
    except ValueError:
        start = 0
    return [ln for ln in lines[start:] if ln != "\x00mark"]


# -- settings and results -------------------------------------------------------------------------


@dataclass
class SamplingSettings:
    """How replies are sampled; stored per conversation (`to_dict` / `from_dict`).

    ``seed`` None (or negative) draws a new random seed per reply; a fixed seed with the same
    prompt and settings gives the same reply. ``temperature`` 0 is greedy decoding.
    """

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    max_tokens: int = 1024

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SamplingSettings:
        """Settings from a stored dict; unknown keys are ignored, missing ones get defaults.

        Raises:
            EngineError: a value is of the wrong type or out of range.
        """
        settings = cls()
        known = {f.name: f for f in fields(cls)}
        for key, value in (data or {}).items():
            if key not in known:
                continue
            if key == "seed":
                settings.seed = None if value is None else _as_int(key, value)
            elif key in ("top_k", "max_tokens"):
                setattr(settings, key, _as_int(key, value))
            else:
                setattr(settings, key, _as_float(key, value))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise `EngineError` for values llama.cpp cannot use."""
        checks = [
            (0.0 <= self.temperature <= 5.0, "temperature must be between 0 and 5"),
            (0.0 < self.top_p <= 1.0, "top-p must be above 0 and at most 1"),
            (self.top_k >= 0, "top-k must be 0 (off) or more"),
            (0.0 <= self.min_p < 1.0, "min-p must be between 0 and 1"),
            (0.0 < self.repeat_penalty <= 5.0, "repeat penalty must be above 0 and at most 5"),
            (self.max_tokens >= 1, "the reply length limit must be at least 1 token"),
        ]
        for ok, message in checks:
            if not ok:
                raise EngineError(f"Invalid sampling setting: {message}.")


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EngineError(f"Invalid sampling setting {key}: {value!r} is not a number.")
    try:
        return int(value)
    except ValueError:
        raise EngineError(f"Invalid sampling setting {key}: {value!r} is not a number.") from None


def _as_float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EngineError(f"Invalid sampling setting {key}: {value!r} is not a number.")
    try:
        return float(value)
    except ValueError:
        raise EngineError(f"Invalid sampling setting {key}: {value!r} is not a number.") from None


@dataclass
class Timings:
    """What one reply cost.

    ``finish_reason``: ``stop`` (the model ended its turn), ``length`` (``max_tokens`` reached),
    ``context`` (the context window is full), ``cancelled`` (the stop event was set).
    """

    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    time_to_first_token: float = 0.0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    tokens_per_second: float = 0.0
    finish_reason: str = "stop"
    dropped_messages: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the message)."""
        return asdict(self)


@dataclass
class GenerationResult:
    """A finished (or stopped) reply."""

    text: str
    timings: Timings
    dropped_messages: int = 0
    format_description: str = ""


@dataclass
class LoadedModel:
    """Facts about the model in memory, for the UI's model picker."""

    path: Path
    info: GGUFInfo = field(repr=False)
    context_length: int
    n_threads: int
    load_seconds: float
    chat_format: ChatFormat = field(repr=False)
    cpu_variant: str = "unknown"  # which llama.cpp CPU build runs it (portable builds pick one)
    gpu_layers: int = 0  # layers offloaded to a GPU (0: all on the CPU)


# -- the engine -----------------------------------------------------------------------------------


class ChatEngine:
    """One model in memory and a running conversation's KV cache. Use from one thread."""

    def __init__(self) -> None:
        self._llm: Any = None
        self._loaded: LoadedModel | None = None
        self._busy = threading.Lock()
        # KV-cache bookkeeping for prefix reuse: (text, n) means the first n cached tokens are
        # exactly that text (a prompt, or a prompt plus the reply the model wrote to it).
        self._checkpoints: list[tuple[str, int]] = []

    # -- loading ------------------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel | None:
        """The model in memory, or None."""
        return self._loaded

    @property
    def is_loaded(self) -> bool:
        """Whether a model is in memory."""
        return self._loaded is not None

    @property
    def chat_format(self) -> ChatFormat:
        """The loaded model's chat format."""
        return self._require().chat_format

    def load(
        self,
        path: str | os.PathLike[str],
        context_length: int | None = None,
        n_threads: int | None = None,
        progress: LoadProgress | None = None,
        cancel: threading.Event | None = None,
        chat_format: str | None = None,
        prove: bool = True,
        n_gpu_layers: int | None = None,
    ) -> LoadedModel:
        """Load a model, replacing the one in memory.

        Args:
            path: the GGUF file (validated with `read_gguf_info` before llama.cpp sees it).
            context_length: tokens of context; None picks the model's own, at most 4096 and at
                most what fits in memory. Values above the model's training length are capped.
            n_threads: CPU threads; None uses the physical cores.
            progress: called with 0.0-1.0 while loading; returning False cancels.
            cancel: set from another thread to cancel loading.
            chat_format: force a format family (``gemma``, ``chatml``, ``llama3``, ``phi3``,
                ``mistral``, ``plain``, ``qa``); None uses the model's template or the automatic
                fallback.
            prove: load a file in a child process first unless it is known not to crash
                llama.cpp (`slmdesk.llama.probe`); only the probe child itself passes False.
            n_gpu_layers: layers to offload to a GPU; None decides from the device's free
                memory (`hardware.plan_offload`) when the build supports offload; 0 keeps
                everything on the CPU.

        A file that fails validation leaves the current model loaded; once llama.cpp starts
        loading, the current model has been freed (two models need not fit side by side).

        Raises:
            InvalidModelError: the file is not a usable GGUF model.
            LoadCancelled: cancelled by ``progress`` or ``cancel``.
            EngineError: out of memory, unsupported architecture, or llama.cpp refused it.
        """
        with self._busy:
            return self._load(
                Path(path),
                context_length,
                n_threads,
                progress,
                cancel,
                chat_format,
                prove,
                n_gpu_layers,
            )

    def _load(
        self,
        path: Path,
        context_length: int | None,
        n_threads: int | None,
        progress: LoadProgress | None,
        cancel: threading.Event | None,
        format_family: str | None,
        prove: bool = True,
        n_gpu_layers: int | None = None,
    ) -> LoadedModel:
        started = time.monotonic()
        if format_family is not None and format_family not in FAMILIES:
            raise EngineError(
                f"Unknown chat format {format_family!r}; choose from {', '.join(FAMILIES)}."
            )
        info = read_gguf_info(path)
        if info.architecture == "unknown":
            raise InvalidModelError(f"{path.name} does not say which model architecture it is.")
        machine = machine_info()
        if context_length is not None and context_length < MIN_CONTEXT:
            raise EngineError(f"The context length must be at least {MIN_CONTEXT} tokens.")
        ctx = context_for_load(info, context_length, machine, minimum=MIN_CONTEXT)
        if n_gpu_layers is not None and n_gpu_layers < 0:
            raise EngineError("The number of GPU layers must be 0 or more.")
        device_free = gpu_free_bytes() if n_gpu_layers != 0 else None
        gpu_layers = plan_offload(info, ctx, device_free, n_gpu_layers).gpu_layers
        estimate = estimate_with_offload(info, ctx, machine, device_free, n_gpu_layers)
        if estimate.verdict == "too big":
            raise EngineError(
                f"Not enough memory for {path.name}: it needs about "
                f"{estimate.total_bytes / 1e9:.1f} GB at {ctx:,} tokens of context and this "
                f"computer has {machine.total_ram / 1e9:.1f} GB. Try a smaller context or model."
            )
        threads = n_threads or machine.physical_cores
        if threads < 1:
            raise EngineError("The thread count must be at least 1.")
        if prove:
            try:
                probe.ensure_loadable(info.path, cancel=cancel)
            except probe.ProbeCancelled:
                raise LoadCancelled("Loading the model was cancelled.") from None
        self._unload()
        if cancel is not None and cancel.is_set():
            raise LoadCancelled("Loading the model was cancelled.")

        _install_llama_log()
        import llama_cpp

        cancelled = False

        def on_progress(fraction: float, _user: ctypes.c_void_p) -> bool:
            nonlocal cancelled
            try:
                wants_stop = cancel is not None and cancel.is_set()
                if wants_stop or (progress is not None and progress(float(fraction)) is False):
                    cancelled = True
            except Exception:  # never let an exception cross into C
                log.exception("load progress callback failed")
            return not cancelled

        c_progress = llama_cpp.llama_progress_callback(on_progress)
        mark = _log_mark()
        pending = probe.loading_started(info.path) if prove else None
        try:
            with _load_hooks(c_progress):
                llm = llama_cpp.Llama(
                    model_path=str(info.path),
                    n_ctx=ctx,
                    n_batch=512,
                    n_threads=threads,
                    n_threads_batch=threads,
                    use_mmap=True,
                    n_gpu_layers=gpu_layers,
                    swa_full=bool(info.sliding_window),  # keeps prefix reuse possible
                    verbose=False,
                )
        except Exception as exc:
            if cancelled or (cancel is not None and cancel.is_set()):
                raise LoadCancelled("Loading the model was cancelled.") from None
            raise self._load_error(info, ctx, exc, _log_since(mark)) from None
        finally:
            if pending is not None:
                probe.loading_done(pending, info.path)
        if cancel is not None and cancel.is_set():
            llm.close()
            raise LoadCancelled("Loading the model was cancelled.")
        if progress is not None:
            with contextlib.suppress(Exception):
                progress(1.0)
        self._llm = llm
        self._checkpoints = []
        chat_format = self._make_format(info, format_family)
        self._loaded = LoadedModel(
            path=info.path,
            info=info,
            context_length=int(llm.n_ctx()),
            n_threads=threads,
            load_seconds=time.monotonic() - started,
            chat_format=chat_format,
            cpu_variant=_cpu_variant(),
            gpu_layers=gpu_layers,
        )
        log.info(
            "loaded %s: %d tokens of context, %d threads, llama.cpp CPU variant %s",
            info.path.name,
            self._loaded.context_length,
            threads,
            self._loaded.cpu_variant,
        )
        return self._loaded

    @staticmethod
    def _load_error(info: GGUFInfo, ctx: int, exc: Exception, lines: list[str]) -> EngineError:
        text = "\n".join(lines).lower()
        name = info.path.name
        if "unknown model architecture" in text or "unknown architecture" in text:
            return EngineError(
                f"This version of llama.cpp cannot run {name}: its architecture "
                f"{info.architecture!r} is not supported."
            )
        if any(s in text for s in ("failed to allocate", "unable to allocate", "out of memory")):
            return EngineError(
                f"Not enough memory to load {name} with {ctx:,} tokens of context; try a smaller "
                "context or close other programs."
            )
        if "failed to create llama_context" in str(exc).lower():
            return EngineError(
                f"llama.cpp could not set up {name} with {ctx:,} tokens of context (out of "
                "memory?); try a smaller context."
            )
        detail = next(
            (ln for ln in reversed(lines) if "error" in ln.lower() or "failed" in ln.lower()), ""
        )
        reason = detail.split(":", 1)[-1].strip() if detail else str(exc)
        return EngineError(f"llama.cpp could not load {name} (damaged or unsupported): {reason}")

    def _make_format(self, info: GGUFInfo, family: str | None = None) -> ChatFormat:
        model = self._llm._model

        def text_of(token_id: int) -> str:
            if token_id is None or token_id < 0:
                return ""
            try:
                return str(model.token_get_text(token_id))
            except Exception:
                return ""

        import llama_cpp

        def is_special(marker: str) -> bool:
            ids = model.tokenize(marker.encode("utf-8"), False, True)
            return len(ids) == 1 and bool(
                model.token_get_attr(ids[0]) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
            )

        eot = model.token_eot()
        return ChatFormat.from_info(
            info,
            bos_token=text_of(model.token_bos()),
            eos_token=text_of(model.token_eos()),
            eot_token=text_of(eot) if eot != model.token_eos() else "",
            is_special_token=is_special,
            fallback=family,
        )

    def unload(self) -> None:
        """Free the model (no-op when none is loaded)."""
        with self._busy:
            self._unload()

    def _unload(self) -> None:
        llm, self._llm, self._loaded = self._llm, None, None
        self._checkpoints = []
        if llm is not None:
            llm.close()

    def reset_cache(self) -> None:
        """Forget the cached prompt (the next reply evaluates its whole prompt)."""
        with self._busy:
            if self._llm is not None:
                self._llm.reset()
            self._checkpoints = []

    def _require(self) -> LoadedModel:
        if self._loaded is None or self._llm is None:
            raise EngineError("No model is loaded: pick a model first.")
        return self._loaded

    # -- tokens -------------------------------------------------------------------------------

    def _tokenize(self, text: str, add_bos: bool) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def _prompt_tokens(self, prompt: str) -> list[int]:
        """Tokens for ``prompt``, keeping cached tokens where the text extends a checkpoint.

        The reply's tokens are kept as the model wrote them: re-tokenizing its text could split
        it differently and break the prefix match for every later turn.
        """
        import llama_cpp

        model = self._llm._model
        n_cached = int(self._llm.n_tokens)
        for text, n in sorted(self._checkpoints, key=lambda c: -c[1]):
            if n > n_cached or not prompt.startswith(text):
                continue
            head = [int(t) for t in self._llm._input_ids[:n]]
            if len(prompt) == len(text):
                return head
            rest = self._tokenize(prompt[len(text) :], add_bos=False)
            # Safe only where the new text begins with a control token (a turn marker): the
            # tokenizer splits at those first, so the rest tokenizes as it would in full.
            if rest and model.token_get_attr(rest[0]) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL:
                return head + rest
        bos_text = self.chat_format.bos_token
        add_bos = bool(model.add_bos_token()) and not (bos_text and prompt.startswith(bos_text))
        return self._tokenize(prompt, add_bos=add_bos)

    def vocabulary_size(self) -> int:
        """How many tokens the loaded model's vocabulary has."""
        import llama_cpp

        self._require()
        return int(llama_cpp.llama_vocab_n_tokens(self._llm._model.vocab))

    def token_bytes(self, token: int) -> bytes:
        """The text of one vocabulary token, as bytes (what streaming would print)."""
        self._require()
        return self._piece(token)

    def _piece(self, token: int) -> bytes:
        import llama_cpp

        vocab = self._llm._model.vocab
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    # -- generating ---------------------------------------------------------------------------

    def fit_messages(
        self,
        messages: Sequence[Mapping[str, Any]],
        reply_room: int,
        prompt_format: ChatFormat | CompletionFormat | None = None,
    ) -> tuple[list[dict[str, Any]], str, int]:
        """Drop the oldest turns (never the system prompt or the last message) until the prompt
        leaves ``reply_room`` tokens free (rendered with ``prompt_format``, default the model's).

        Returns:
            The kept messages, their rendered prompt and how many messages were dropped.

        Raises:
            ContextOverflowError: even the system prompt and the last message alone do not fit.
        """
        loaded = self._require()
        fmt = prompt_format or loaded.chat_format
        n_ctx = loaded.context_length
        system = [dict(m) for m in messages if m.get("role") == "system"]
        turns = [dict(m) for m in messages if m.get("role") != "system"]
        dropped = 0
        while True:
            kept = system + turns
            prompt = fmt.render(kept, add_generation_prompt=True)
            n_prompt = len(self._tokenize(prompt, add_bos=False))
            if n_prompt + reply_room <= n_ctx:
                return kept, prompt, dropped
            if len(turns) <= 1:
                raise ContextOverflowError(
                    f"The message is too long for this model's context: the prompt needs "
                    f"{n_prompt:,} tokens and the context holds {n_ctx:,} (with {reply_room:,} "
                    "kept for the reply). Shorten it or load the model with a larger context."
                )
            # Drop the oldest turn, then any assistant turns so the history starts with a user.
            turns.pop(0)
            dropped += 1
            while len(turns) > 1 and turns[0].get("role") == "assistant":
                turns.pop(0)
                dropped += 1

    def generate(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: SamplingSettings | None = None,
        on_token: TokenCallback | None = None,
        stop_event: threading.Event | None = None,
        complete: bool = False,
    ) -> GenerationResult:
        """Write the assistant's reply to ``messages``, streaming it through ``on_token``.

        Args:
            messages: ``{"role", "content"}`` dicts, optionally starting with the system prompt
                and ending with the user's message.
            sampling: sampling settings; None uses the defaults.
            on_token: called with each new piece of visible text (whole characters only; end-of
                -turn markers are never passed).
            stop_event: when set (from any thread) the reply ends after the current token.
            complete: text completion: the last message alone is the prompt, continued as
                written (`CompletionFormat`), instead of the conversation in the chat format.

        Returns:
            The reply text and its timings. A stopped reply keeps what was written so far.

        Raises:
            EngineError: no model, an empty message, or a message longer than the context.
        """
        with self._busy:
            return self._generate(
                messages, sampling or SamplingSettings(), on_token, stop_event, complete
            )

    def _generate(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: SamplingSettings,
        on_token: TokenCallback | None,
        stop_event: threading.Event | None,
        complete: bool = False,
    ) -> GenerationResult:
        loaded = self._require()
        fmt = CompletionFormat(loaded.chat_format) if complete else loaded.chat_format
        sampling.validate()
        if not messages or messages[-1].get("role") != "user":
            raise EngineError("The conversation must end with a message from you.")
        if not str(messages[-1].get("content") or "").strip():
            raise EngineError("The message is empty: type something first.")
        n_ctx = loaded.context_length
        started = time.monotonic()
        reply_room = max(1, min(sampling.max_tokens, n_ctx // REPLY_ROOM_SHARE))
        if complete:  # the text alone: earlier turns are not part of the prompt
            messages = [messages[-1]]
        _kept, prompt, dropped = self.fit_messages(messages, reply_room, fmt)
        return self._complete(
            prompt, sampling, on_token, stop_event, started, dropped, prompt_format=fmt
        )

    def complete(
        self,
        prompt: str,
        sampling: SamplingSettings | None = None,
        on_token: TokenCallback | None = None,
        stop_event: threading.Event | None = None,
        grammar: Any = None,
        stops: Sequence[str] = (),
        keep_lead: bool = False,
    ) -> GenerationResult:
        """Continue an already rendered ``prompt`` (the local server's completions and chats).

        Args:
            grammar: a compiled ``llama_cpp.LlamaGrammar`` (`slmdesk.llama.grammar`) that
                constrains every sampled token, or None.
            stops: extra strings that end the reply (besides the model's end-of-turn markers).
            keep_lead: keep the reply's leading whitespace (a raw continuation of the prompt,
                where " Paris" after "is" must keep its space).

        Raises:
            EngineError: no model, or the prompt does not fit in the context.
        """
        with self._busy:
            self._require()
            sampling = sampling or SamplingSettings()
            sampling.validate()
            if not prompt:
                raise EngineError("The prompt is empty.")
            return self._complete(
                prompt,
                sampling,
                on_token,
                stop_event,
                time.monotonic(),
                0,
                grammar,
                stops,
                keep_lead,
            )

    def _complete(
        self,
        prompt: str,
        sampling: SamplingSettings,
        on_token: TokenCallback | None,
        stop_event: threading.Event | None,
        started: float,
        dropped: int,
        grammar: Any = None,
        extra_stops: Sequence[str] = (),
        keep_lead: bool = False,
        prompt_format: ChatFormat | CompletionFormat | None = None,
    ) -> GenerationResult:
        loaded = self._require()
        fmt = prompt_format or loaded.chat_format
        llm = self._llm
        n_ctx = loaded.context_length
        tokens = self._prompt_tokens(prompt)
        timings = Timings(prompt_tokens=len(tokens), dropped_messages=dropped)
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(
                f"The prompt needs {len(tokens):,} tokens but the context holds {n_ctx:,}."
            )

        # Reuse the longest common prefix with what is already in the KV cache.
        cached = [int(t) for t in llm._input_ids[: llm.n_tokens]]
        common = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # evaluate at least one token for fresh logits
        if common > 0 and llm._ctx.kv_cache_seq_rm(-1, common, -1):
            llm.n_tokens = common
        else:
            llm.reset()
            common = 0
        self._checkpoints = [c for c in self._checkpoints if c[1] <= common]
        timings.reused_tokens = common
        pending = tokens[common:]
        timings.evaluated_tokens = len(pending)

        def stopped() -> bool:
            return stop_event is not None and stop_event.is_set()

        for i in range(0, len(pending), _PROMPT_CHUNK):
            if stopped():
                timings.finish_reason = "cancelled"
                timings.prompt_seconds = time.monotonic() - started
                return GenerationResult("", timings, dropped, fmt.description)
            llm.eval(pending[i : i + _PROMPT_CHUNK])
        prompt_done = time.monotonic()
        timings.prompt_seconds = prompt_done - started
        self._checkpoints.append((prompt, len(tokens)))

        seed = sampling.seed if sampling.seed is not None and sampling.seed >= 0 else None
        llm.set_seed(seed if seed is not None else secrets.randbits(31))
        llm._sampler = llm._init_sampler(
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            grammar=grammar,
        )
        vocab = llm._model.vocab
        import llama_cpp

        stops = (*fmt.stop_strings, *extra_stops)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        raw = ""  # everything decoded, exactly what the KV cache holds after the prompt
        lead = -1  # leading whitespace not shown (-1: the reply has not started yet)
        text = ""  # the visible reply so far (raw without the lead, up to any stop string)
        shown = 0  # how much of ``text`` was passed to on_token
        first_token_at: float | None = None
        reason = "stop"
        clean_end = True  # the KV cache holds exactly the prompt plus ``raw``
        try:
            while True:
                if stopped():
                    reason = "cancelled"
                    break
                if timings.generated_tokens >= sampling.max_tokens:
                    reason = "length"
                    break
                if llm.n_tokens >= n_ctx:
                    reason = "context"
                    break
                token = int(llm.sample())
                if first_token_at is None:
                    first_token_at = time.monotonic()
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    reason = "stop"
                    break
                llm.eval([token])
                timings.generated_tokens += 1
                raw += decoder.decode(self._piece(token))
                if lead < 0:
                    if keep_lead:
                        lead = 0
                    elif not raw.strip():
                        continue
                    else:
                        lead = len(raw) - len(raw.lstrip())
                text = raw[lead:]
                hit = _find_stop(text, stops)
                if hit is not None:
                    text = text[:hit]
                    reason = "stop"
                    clean_end = False
                    break
                visible = len(text) - _held_back(text, stops)
                if visible > shown and on_token is not None:
                    on_token(text[shown:visible])
                shown = max(shown, visible)
        finally:
            llm._sampler = None
        if clean_end:
            tail = decoder.decode(b"", final=True)  # an unfinished character at the very end
            raw += tail
            text = raw[lead:] if lead >= 0 else ""
        if len(text) > shown and on_token is not None:
            on_token(text[shown:])  # held-back text that turned out not to be a stop string
        reply = text.rstrip() if reason == "stop" else text
        done = time.monotonic()
        timings.finish_reason = reason
        timings.time_to_first_token = (first_token_at or done) - started
        timings.generation_seconds = done - prompt_done
        if timings.generated_tokens and timings.generation_seconds > 0:
            timings.tokens_per_second = timings.generated_tokens / timings.generation_seconds
        if clean_end and raw:
            self._checkpoints.append((prompt + raw, int(llm.n_tokens)))
        return GenerationResult(reply, timings, dropped, fmt.description)


_CPU_VARIANT: str | None = None


def _cpu_variant() -> str:
    """The llama.cpp CPU backend in use (read once: it cannot change within a process)."""
    global _CPU_VARIANT
    if _CPU_VARIANT is None:
        from slmdesk.llama.native import cpu_variant_name, loaded_cpu_backend

        _CPU_VARIANT = cpu_variant_name(loaded_cpu_backend())
    return _CPU_VARIANT


def _find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index of the first stop string in ``text``, or None."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the end of ``text`` that could be the start of a stop string (kept unshown)."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


@contextlib.contextmanager
def _load_hooks(callback: Any) -> Any:
    """Adjust two things ``llama_cpp.Llama`` does while loading, for the duration of one load.

    - ``Llama`` offers no progress argument but builds its model parameters from
      ``llama_model_default_params``: the defaults are wrapped to carry ``callback``.
    - ``Llama`` builds a ``Jinja2ChatFormatter`` for the file's chat template, which compiles
      it at once. slmdesk renders prompts itself (`ChatFormat`), and compiling a hostile
      template can hang or exhaust memory (Jinja evaluates constant expressions while
      compiling). The class is swapped for a subclass that compiles nothing until
      llama-cpp-python's own chat API first uses it, and then in slmdesk's bounded sandbox.
      It has to stay a subclass: llama-cpp-python refers to the class by its module name.

    Both patches are undone on exit and taken under a lock, so two loads cannot mix them.
    """
    import llama_cpp.llama as llama_module

    target = llama_module.llama_cpp
    formats = llama_module.llama_chat_format
    with _HOOK_LOCK:
        original_params = target.llama_model_default_params
        original_formatter = formats.Jinja2ChatFormatter

        def params_with_progress() -> Any:
            params = original_params()
            params.progress_callback = callback
            return params

        setattr(target, "llama_model_default_params", params_with_progress)  # noqa: B010
        setattr(formats, "Jinja2ChatFormatter", _deferred_formatter(original_formatter))  # noqa: B010
        try:
            yield
        finally:
            setattr(target, "llama_model_default_params", original_params)  # noqa: B010
            setattr(formats, "Jinja2ChatFormatter", original_formatter)  # noqa: B010


@functools.cache
def _deferred_formatter(base: type) -> type:
    """A subclass of llama-cpp-python's ``Jinja2ChatFormatter`` that compiles on first use."""

    class DeferredJinja2ChatFormatter(base):  # type: ignore[misc, valid-type]
        """Keeps the template text; `_environment` compiles it when a chat call needs it."""

        def __init__(
            self,
            template: str,
            eos_token: str,
            bos_token: str,
            add_generation_prompt: bool = True,
            stop_token_ids: list[int] | None = None,
        ) -> None:
            # The base class would compile here; it is deliberately not called.
            self.template = template
            self.eos_token = eos_token
            self.bos_token = bos_token
            self.add_generation_prompt = add_generation_prompt
            self.stop_token_ids = set(stop_token_ids) if stop_token_ids is not None else None
            self._bounded: _BoundedChatTemplate | None = None

        @property
        def _environment(self) -> _BoundedChatTemplate:
            # The base class's __call__ renders through ``self._environment.render(**kw)``.
            if self._bounded is None:
                self._bounded = _BoundedChatTemplate(self.template)
            return self._bounded

    return DeferredJinja2ChatFormatter


class _BoundedChatTemplate:
    """The model's template for llama-cpp-python's chat API, compiled and run under limits."""

    def __init__(self, template: str) -> None:
        try:
            self._template = BoundedTemplate(template)
        except TemplateLimitError as exc:
            raise EngineError(f"The model's chat template was refused: {exc}.") from None
        except Exception as exc:
            raise EngineError(f"The model's chat template is broken: {exc}") from None

    def render(self, **context: Any) -> str:
        try:
            return self._template.render(context, Budget(Limits()))
        except TemplateLimitError as exc:
            raise EngineError(f"The model's chat template was refused: {exc}.") from None


_HOOK_LOCK = threading.Lock()
