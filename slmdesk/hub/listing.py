"""Find GGUF models on the Hugging Face Hub and judge, before downloading, whether they fit.

Everything goes through the real ``huggingface_hub`` client (`HfApi.list_models`,
`HfApi.model_info` with file metadata, ``resolve`` URLs). The endpoint is read from ``HF_ENDPOINT``
at call time and passed explicitly, because the client itself reads it only once at import. The
token is always passed explicitly too (ours or ``False``), so a token saved by another tool is
never sent. Every failure of the Hub or the network becomes a one-sentence `HubError`
subclass; `hub_errors` wraps only the HTTP calls, so a bug in slmdesk stays a bug (logged, shown
as an internal error) instead of being blamed on the Hub.

Memory estimates use `hardware.estimate_for`, the formula behind ``slmdesk inspect``: from the
remote GGUF header of one file when asked (``read_header``), else from the file sizes alone.
Quality ranks come from `slmdesk.models.quant_types`.

No Qt here: the Discover page calls these functions from a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import email.utils
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from slmdesk.common.errors import SlmdeskError
from slmdesk.hub.remote_header import HeaderFacts, check_content_range, read_header_facts
from slmdesk.models import hardware, quant_types
from slmdesk.models.gguf_info import GGUFInfo
from slmdesk.models.gguf_ranges import read_header_in_ranges
from slmdesk.models.gguf_text import printable

DEFAULT_ENDPOINT = "https://huggingface.co"
API_TIMEOUT = 20.0  # seconds for one metadata request
PROBE_TIMEOUT = 4.0  # seconds to decide that the Hub cannot be reached at all
CARD_MAX_BYTES = 512 * 1024
MAX_FILE_HEADERS = 24  # files of one repository whose own headers ``files`` reads

SortKey = Literal["downloads", "likes", "updated"]
log = logging.getLogger(__name__)

_SORT_PARAM: dict[str, str] = {
    "downloads": "downloads",
    "likes": "likes",
    "updated": "last_modified",
}

# The split-file convention of llama.cpp's gguf-split: stem-00001-of-00003.gguf.
_SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])("
    + "|".join(sorted(map(re.escape, quant_types.KNOWN_NAMES), key=len, reverse=True))
    + r")"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)


# -- errors ------------------------------------------------------------------------------------


class HubError(SlmdeskError):
    """Something about the Hub went wrong; the message says what to do."""


class HubOfflineError(HubError):
    """No network, or the Hub cannot be reached (or ``HF_HUB_OFFLINE`` is set)."""


class RepoNotFoundError(HubError):
    """No such repository (or it is private and no valid token was given)."""


class GatedRepoError(HubError):
    """The repository needs an accepted licence and a token (HTTP 401/403)."""


class NoGGUFError(HubError):
    """The repository has no GGUF file slmdesk could run."""


class HubServerError(HubError):
    """The Hub answered with an HTTP error it did not explain, or with something unreadable.

    ``status`` is the HTTP status (None for an unreadable answer) and ``retry_after`` the wait in
    seconds the Hub asked for, so a download can tell a file that is gone (404: stop at once)
    from a Hub that is rate-limiting (429: wait as asked) or failing (5xx: back off, then stop).
    """

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# -- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoSummary:
    """One search result: a model repository on the Hub."""

    repo_id: str
    author: str | None
    downloads: int
    likes: int
    last_modified: str | None  # ISO 8601, UTC
    license: str | None
    gated: bool
    private: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``search --json`` contract)."""
        return {
            "repo_id": self.repo_id,
            "author": self.author,
            "downloads": self.downloads,
            "likes": self.likes,
            "last_modified": self.last_modified,
            "license": self.license,
            "gated": self.gated,
            "private": self.private,
        }


@dataclass(frozen=True)
class RemoteFile:
    """One file of a repository as the Hub describes it (name untrusted)."""

    filename: str  # path inside the repository, as the Hub spells it
    size_bytes: int
    sha256: str | None  # from the LFS pointer; None for a file kept in git itself
    blob_id: str | None = None  # git object id (sha1 of the blob), checks non-LFS files

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "filename": self.filename,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "blob_id": self.blob_id,
        }


@dataclass
class RemoteModel:
    """A downloadable model of a repository: one GGUF file, or every part of a split one."""

    repo_id: str
    revision: str  # the commit the listing came from, so every part comes from the same one
    name: str  # the file name, or the shared stem of a split model
    files: list[RemoteFile]
    quantization: str | None
    quantization_source: Literal["name", "header", "unknown"] = "name"
    estimate_bytes: int = 0  # weights + KV cache at the default context + overhead
    estimate_exact: bool = False  # True when computed from this very file's header
    verdict: hardware.Verdict = "fits"
    recommended: bool = False
    is_projector: bool = False  # a vision projector (mmproj), not a language model
    header: HeaderFacts | None = None  # this file's own header, once read

    @property
    def size_bytes(self) -> int:
        """Bytes on disk once downloaded (all parts)."""
        return sum(f.size_bytes for f in self.files)

    @property
    def sha256(self) -> str | None:
        """The SHA-256 of a single-file model (None for split models or non-LFS files)."""
        return self.files[0].sha256 if len(self.files) == 1 else None

    @property
    def quality_rank(self) -> float:
        """How close to the original model this quantization is (0 when unknown)."""
        return quant_types.quality_rank(self.quantization)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``files --json`` contract)."""
        return {
            "name": self.name,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "quantization": self.quantization,
            "quantization_source": self.quantization_source,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "files": [f.as_dict() for f in self.files],
            "split": len(self.files) > 1,
            "memory_estimate_bytes": self.estimate_bytes,
            "memory_estimate_exact": self.estimate_exact,
            "estimate_exact": self.estimate_exact,
            "header": self.header.as_dict() if self.header else None,
            "verdict": self.verdict,
            "recommended": self.recommended,
            "projector": self.is_projector,
        }


@dataclass
class RepoFiles:
    """What a repository offers: its GGUF models and its model card."""

    repo_id: str
    revision: str
    models: list[RemoteModel]
    card_text: str | None
    gated: bool
    license: str | None
    header_problems: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> why

    @property
    def recommended(self) -> RemoteModel | None:
        """The suggested pick, if any model fits."""
        return next((m for m in self.models if m.recommended), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        rec = self.recommended
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "gated": self.gated,
            "license": self.license,
            "recommended": rec.name if rec else None,
            "files": [m.as_dict() for m in self.models],
            "card_text": self.card_text,
            "header_problems": dict(self.header_problems),
        }


# -- configuration -----------------------------------------------------------------------------


def hub_endpoint() -> str:
    """The Hub to talk to: ``HF_ENDPOINT`` (read now, not at import) or huggingface.co."""
    return (os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT).rstrip("/")


def is_offline_mode() -> bool:
    """Whether the user asked for no network (``HF_HUB_OFFLINE``), as huggingface_hub sees it."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def resolve_token(token: str | None = None) -> str | bool:
    """The token to pass to huggingface_hub: ours, or False so no other saved token is sent."""
    if token:
        return token
    from slmdesk.hub.token import load_token

    return load_token() or False


def file_url(
    repo_id: str, filename: str, revision: str = "main", endpoint: str | None = None
) -> str:
    """The ``resolve`` URL of a file, on the configured endpoint."""
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint or hub_endpoint())


def check_reachable(endpoint: str) -> None:
    """Fail fast when the Hub's host does not answer at all.

    The client retries network errors with backoff for about 20 seconds; a person offline
    should hear so at once. Skipped behind a proxy, where only the proxy is reachable.
    """
    if any(
        os.environ.get(k)
        for k in (
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        )
    ):
        return
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return
    except OSError:
        raise HubOfflineError(_offline_message(endpoint)) from None


def _offline_message(endpoint: str) -> str:
    host = urlsplit(endpoint).netloc or endpoint
    return (
        f"You are offline or {host} cannot be reached: searching and downloading need the "
        "network; your library and chats still work."
    )


@contextlib.contextmanager
def hub_errors(repo_id: str | None = None, has_token: bool = False) -> Iterator[None]:
    """Turn huggingface_hub and network exceptions into one-sentence `HubError`s.

    Wrap the HTTP calls only. Anything else that goes wrong inside is not the Hub's doing and
    passes through untouched: a disk error is reported as such by whoever writes the file, and a
    TypeError or KeyError is a bug in slmdesk, logged with its traceback and shown as an
    internal error (`slmdesk.common.errors.user_message`) rather than blamed on the Hub.

    Args:
        repo_id: the repository concerned, named in the messages.
        has_token: whether a token was sent (changes the advice for 401/403).
    """
    import httpx2
    from huggingface_hub import errors as hf_errors

    what = f"the repository {repo_id!r}" if repo_id else "the Hub"
    try:
        yield
    except HubError:
        raise
    except hf_errors.OfflineModeIsEnabled:
        raise HubOfflineError(
            "You are offline (HF_HUB_OFFLINE is set): searching and downloading are turned off; "
            "your library and chats still work."
        ) from None
    except hf_errors.GatedRepoError:
        raise GatedRepoError(_gated_message(repo_id, has_token)) from None
    except hf_errors.RepositoryNotFoundError as exc:
        status = exc.response.status_code if exc.response is not None else 404
        if status in (401, 403) and not has_token:
            raise RepoNotFoundError(
                f"{what[:1].upper() + what[1:]} was not found, or it is private: check the name, or add a "
                "Hugging Face token in Settings if it is yours."
            ) from None
        raise RepoNotFoundError(
            f"{what[:1].upper() + what[1:]} was not found on the Hub (check the name, e.g. owner/model-GGUF)."
        ) from None
    except hf_errors.RemoteEntryNotFoundError:
        raise HubError(f"That file is no longer in {what} (the repository changed?).") from None
    except hf_errors.RevisionNotFoundError:
        raise HubError(f"That revision of {what} does not exist.") from None
    except hf_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        wait = retry_after_seconds(exc.response.headers.get("Retry-After")) if status else None
        if status in (401, 403):
            raise GatedRepoError(_gated_message(repo_id, has_token)) from None
        if status == 429:
            raise HubServerError(
                "The Hub is rate-limiting requests: wait a minute and try again.", status, wait
            ) from None
        if status >= 500:
            raise HubServerError(
                f"The Hub answered with a server error ({status}); try again in a moment.",
                status,
                wait,
            ) from None
        raise HubServerError(
            f"The Hub refused the request (HTTP {status}).", status or None, wait
        ) from None
    except httpx2.UnsupportedProtocol:
        raise HubError(
            f"The Hub address {hub_endpoint()!r} (HF_ENDPOINT) is not an http(s) address."
        ) from None
    except httpx2.TransportError:  # timeouts, refused or cut connections, proxy failures
        raise HubOfflineError(_offline_message(hub_endpoint())) from None
    except (json.JSONDecodeError, httpx2.DecodingError) as exc:
        raise HubServerError(f"The Hub sent an answer slmdesk cannot read ({exc}).") from None


def retry_after_seconds(value: str | None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (None when absent or unreadable).

    The header is either a number of seconds or an HTTP date; a date in the past means no wait.
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def _gated_message(repo_id: str | None, has_token: bool) -> str:
    name = repo_id or "This repository"
    if has_token:
        return (
            f"{name} is gated and your token has no access to it: accept its licence on the "
            "Hub's page with the same account, then try again."
        )
    return (
        f"{name} is gated: accept its licence on the Hub's page, then add a Hugging Face "
        "token in Settings (or set HF_TOKEN)."
    )


def _api(token: str | bool) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_endpoint(), token=token)


def _require_online() -> None:
    if is_offline_mode():
        raise HubOfflineError(
            "You are offline (HF_HUB_OFFLINE is set): searching and downloading are turned off; "
            "your library and chats still work."
        )


# -- search ------------------------------------------------------------------------------------


def _license_from_tags(tags: list[str] | None) -> str | None:
    for tag in tags or []:
        if tag.startswith("license:"):
            return tag.split(":", 1)[1]
    return None


def search_models(
    query: str, sort: SortKey = "downloads", limit: int = 20, token: str | None = None
) -> list[RepoSummary]:
    """GGUF model repositories matching ``query``, most downloaded/liked/recent first.

    Args:
        query: words in the repository name ("" lists the top repositories).
        sort: ``downloads``, ``likes`` or ``updated``.
        limit: at most this many results (1-1000).
        token: a Hub token; None uses the saved one.

    Raises:
        HubError: offline, server error, bad answer.
    """
    if sort not in _SORT_PARAM:
        raise HubError(f"Sort by one of {', '.join(_SORT_PARAM)}, not {sort!r}.")
    if not 1 <= limit <= 1000:
        raise HubError("The number of results must be between 1 and 1000.")
    _require_online()
    endpoint = hub_endpoint()
    check_reachable(endpoint)
    tok = resolve_token(token)
    with hub_errors(has_token=bool(tok)):
        # A lazy iterator: the requests happen while it is read, so it is read here.
        items = list(
            _api(tok).list_models(
                filter="gguf",
                search=query.strip() or None,
                sort=_SORT_PARAM[sort],
                limit=limit,
                expand=["author", "downloads", "likes", "lastModified", "gated", "private", "tags"],
            )
        )
    return [_summary(info) for info in items]


def _summary(info: Any) -> RepoSummary:
    last = info.last_modified.isoformat() if info.last_modified else None
    return RepoSummary(
        repo_id=info.id,
        author=info.author or (info.id.split("/", 1)[0] if "/" in info.id else None),
        downloads=int(info.downloads or 0),
        likes=int(info.likes or 0),
        last_modified=last,
        license=_license_from_tags(info.tags),
        gated=bool(info.gated),
        private=bool(info.private),
    )


# -- files of a repository ---------------------------------------------------------------------


def quantization_from_name(filename: str) -> str | None:
    """The quantization named in a file name (``Q4_K_M``, ``IQ3_XS``, ``F16``...), or None."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    match = _SPLIT_RE.match(base)
    stem = match["stem"] if match else re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE)
    found = _QUANT_RE.findall(stem)
    if not found:
        folder = filename.replace("\\", "/").rsplit("/", 1)[0] if "/" in filename else ""
        found = _QUANT_RE.findall(folder)
    return found[-1].upper() if found else None


def group_gguf_files(repo_id: str, revision: str, files: list[RemoteFile]) -> list[RemoteModel]:
    """GGUF files as models: split parts (``-00001-of-00003.gguf``) become one model.

    A split model with a missing part is left out: it could never be loaded.
    """
    singles: list[RemoteModel] = []
    splits: dict[tuple[str, int], dict[int, RemoteFile]] = {}
    for f in files:
        if not f.filename.lower().endswith(".gguf"):
            continue
        base = f.filename.replace("\\", "/").rsplit("/", 1)[-1]
        match = _SPLIT_RE.match(base)
        if match:
            folder = f.filename[: len(f.filename) - len(base)]
            key = (folder + match["stem"], int(match["count"]))
            splits.setdefault(key, {})[int(match["index"])] = f
            continue
        singles.append(
            RemoteModel(
                repo_id=repo_id,
                revision=revision,
                name=base,
                files=[f],
                quantization=quantization_from_name(f.filename),
                is_projector=base.lower().startswith("mmproj"),
            )
        )
    for (stem, count), parts in splits.items():
        if sorted(parts) != list(range(1, count + 1)):
            continue
        ordered = [parts[i] for i in range(1, count + 1)]
        singles.append(
            RemoteModel(
                repo_id=repo_id,
                revision=revision,
                name=stem.rsplit("/", 1)[-1],
                files=ordered,
                quantization=quantization_from_name(ordered[0].filename),
                is_projector=stem.rsplit("/", 1)[-1].lower().startswith("mmproj"),
            )
        )
    for model in singles:
        if model.quantization is None:
            model.quantization_source = "unknown"
    return sorted(singles, key=lambda m: (m.is_projector, m.size_bytes, m.name))


def judge_fit(models: list[RemoteModel], machine: hardware.MachineInfo | None = None) -> None:
    """Set each model's verdict, and mark the recommended one.

    A model without an estimate yet gets `hardware.estimate_from_file_size` (only its size is
    known); `apply_header_estimates` gives better ones first when a header could be read.

    The recommendation is the highest-quality quantized model that ``fits`` comfortably;
    full-precision files (F16/BF16/F32) are only suggested when no quantized one fits, since
    they double the memory for a difference few can notice.
    """
    machine = machine or hardware.machine_info()
    for model in models:
        if not model.estimate_bytes:
            model.estimate_bytes = hardware.estimate_from_file_size(model.size_bytes).total_bytes
        model.verdict = hardware.verdict_for(model.estimate_bytes, machine)
        model.recommended = False
    candidates = [m for m in models if m.verdict == "fits" and not m.is_projector]
    quantized = [m for m in candidates if not quant_types.is_full_precision(m.quantization)]
    if quantized:
        best = max(quantized, key=lambda m: (m.quality_rank, -m.size_bytes))
    elif candidates:
        best = min(candidates, key=lambda m: m.size_bytes)
    else:
        return
    best.recommended = True


def _siblings(info: Any) -> list[RemoteFile]:
    files: list[RemoteFile] = []
    for sib in info.siblings or []:
        lfs = sib.lfs
        size = lfs.size if lfs is not None else sib.size
        files.append(
            RemoteFile(
                filename=str(sib.rfilename),
                size_bytes=int(size or 0),
                sha256=str(lfs.sha256).lower() if lfs is not None else None,
                blob_id=str(sib.blob_id) if sib.blob_id else None,
            )
        )
    return files


def fetch_model_card(repo_id: str, revision: str = "main", token: str | None = None) -> str | None:
    """The repository's README.md text (front matter included), or None when it has none."""
    from huggingface_hub.utils import build_hf_headers, get_session

    _require_online()
    tok = resolve_token(token)
    url = file_url(repo_id, "README.md", revision)
    with hub_errors(repo_id, bool(tok)):
        headers = build_hf_headers(token=tok, headers={"Accept-Encoding": "identity"})
        with get_session().stream("GET", url, headers=headers, timeout=API_TIMEOUT) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code >= 400:
                resp.read()
                from huggingface_hub.utils import hf_raise_for_status

                hf_raise_for_status(resp)
            data = bytearray()
            for piece in resp.iter_bytes():
                data += piece
                if len(data) >= CARD_MAX_BYTES:
                    break
    return bytes(data[:CARD_MAX_BYTES]).decode("utf-8", errors="replace")


def read_remote_header(model: RemoteModel, token: str | None = None) -> GGUFInfo:
    """The header facts of a model on the Hub, from its (first) file, read in ranges.

    A few hundred KB at most for real files (`slmdesk.models.gguf_ranges`), never more than its
    hard cap. As for downloads, the token goes to the Hub only, never to the CDN the Hub
    redirects to.

    Raises:
        HubError: the Hub could not be asked, ignored ``Range`` or lied about the size.
        InvalidModelError: the file is not GGUF, or its header is damaged or too long.
    """
    first = model.files[0]
    read = _range_reader(model, token)
    return read_header_in_ranges(read, first.filename.rsplit("/", 1)[-1], first.size_bytes).info


def read_file_header(model: RemoteModel, token: str | None = None) -> HeaderFacts:
    """The facts of ``model``'s own (first) file: from the cache, else read in ranges.

    Raises:
        HubError, InvalidModelError: as `read_remote_header`.
    """
    first = model.files[0]
    content_id = first.sha256 or first.blob_id
    from slmdesk.hub.remote_header import cached_facts

    facts = cached_facts(model.repo_id, first.filename, content_id)
    if facts is not None:
        return facts
    return read_header_facts(
        _range_reader(model, token), model.repo_id, first.filename, first.size_bytes, content_id
    )


def _range_reader(model: RemoteModel, token: str | None) -> Any:
    """``read(offset, length)`` over the first file of ``model``, one Range request per call."""
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.utils import build_hf_headers

    _require_online()
    tok = resolve_token(token)
    first = model.files[0]
    endpoint = hub_endpoint()
    url = file_url(model.repo_id, first.filename, model.revision, endpoint)
    with hub_errors(model.repo_id, bool(tok)):
        meta = get_hf_file_metadata(url, token=tok, timeout=API_TIMEOUT, endpoint=endpoint)
    location = str(meta.location or url)
    same_origin = url_origin(location) == url_origin(endpoint)
    headers = build_hf_headers(token=tok if same_origin else False)  # never to the CDN
    headers["Accept-Encoding"] = "identity"
    name = printable(first.filename.rsplit("/", 1)[-1], 80)

    def read(offset: int, length: int) -> bytes:
        wanted = {**headers, "Range": f"bytes={offset}-{offset + length - 1}"}
        return _read_range(location, wanted, offset, length, first.size_bytes, name, model, tok)

    return read


def _read_range(
    url: str,
    headers: dict[str, str],
    offset: int,
    length: int,
    size_bytes: int,
    name: str,
    model: RemoteModel,
    token: str | bool,
) -> bytes:
    """``length`` bytes of the file at ``url`` from ``offset``.

    Streamed, and stopped once enough arrived: a server that ignores ``Range`` and answers with
    the whole file costs ``length`` bytes, not the file (and is refused past the first range).

    Raises:
        HubError: the Hub failed, ignored the range, or sent another size than it lists.
    """
    from huggingface_hub.utils import get_session, hf_raise_for_status

    got = bytearray()
    with (
        hub_errors(model.repo_id, bool(token)),
        get_session().stream(
            "GET", url, headers=headers, timeout=API_TIMEOUT, follow_redirects=True
        ) as resp,
    ):
        if resp.status_code >= 400:
            resp.read()
            hf_raise_for_status(resp)
        if resp.status_code == 206:
            problem = check_content_range(
                resp.headers.get("Content-Range"), offset, size_bytes, name
            )
            if problem:
                raise HubError(problem)
        elif offset:
            raise HubError(
                f"The Hub ignored a range request for {name}, so its header cannot be read "
                "without downloading the whole file."
            )
        else:
            sent = resp.headers.get("Content-Length", "")
            if sent.isdigit() and int(sent) != size_bytes:
                raise HubError(f"The Hub lists {size_bytes:,} bytes for {name} but sends {sent}.")
        for piece in resp.iter_bytes():
            got += piece
            if len(got) >= length:
                break
    return bytes(got[:length])


def url_origin(url: str) -> tuple[str, str, int]:
    """Scheme, host and port: two URLs with the same origin may share a token."""
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or (443 if parts.scheme == "https" else 80),
    )


def apply_header_estimates(
    models: list[RemoteModel], reference: RemoteModel, header: GGUFInfo | HeaderFacts
) -> None:
    """Estimate every language model of a repository from the header of one of them.

    ``reference`` gets exactly what ``slmdesk inspect`` would say once it is downloaded (the same
    `hardware.estimate_for` on the same header). Its siblings are other quantizations of the
    same model: the same layers, heads and vocabulary, with weights their file size less the
    header, which is close to exact but not read from their own header (unless it was: a model
    whose own header was read keeps its exact figure).
    """
    facts = header if isinstance(header, HeaderFacts) else HeaderFacts.of(header, 0)
    for model in models:
        if model.is_projector:
            continue
        if model.header is not None:
            apply_file_facts(model, model.header)
        elif model is reference and len(model.files) == 1:
            apply_file_facts(model, facts)
        else:
            weights = max(0, model.size_bytes - facts.data_offset * len(model.files))
            model.estimate_bytes = hardware.estimate_for(weights, facts.shape).total_bytes


def apply_file_facts(model: RemoteModel, facts: HeaderFacts) -> None:
    """Give a single-file ``model`` the estimate of its own header (exact: no "≈")."""
    model.header = facts
    model.estimate_bytes = hardware.estimate_for(facts.weights_bytes, facts.shape).total_bytes
    model.estimate_exact = True
    if model.quantization is None:
        model.quantization = facts.quantization
        model.quantization_source = "header"


def _header_reference(models: list[RemoteModel]) -> RemoteModel | None:
    """The model whose header is read: the recommended one, else the smallest single file."""
    language = [m for m in models if not m.is_projector]
    rec = next((m for m in language if m.recommended), None)
    if rec is not None:
        return rec
    singles = [m for m in language if len(m.files) == 1]
    return min(singles or language, key=lambda m: m.size_bytes, default=None)


def list_repo_models(
    repo_id: str,
    token: str | None = None,
    machine: hardware.MachineInfo | None = None,
    with_card: bool = True,
    read_header: bool | Literal["every"] = False,
) -> RepoFiles:
    """Every GGUF model in ``repo_id`` with exact sizes, SHA-256, quantization and fit verdict.

    Args:
        repo_id: ``owner/name``.
        token: a Hub token; None uses the saved one.
        machine: judge against this machine (None: this computer, now).
        with_card: also fetch the README.md model card.
        read_header: also read one file's GGUF header from the Hub (a few hundred KB, at most
            8 MiB), so the memory estimates are the ones ``slmdesk inspect`` gives after the
            download; ``"every"`` reads each single-file model's own header (exact facts for
            every row). Without it (or if a header cannot be read) estimates come from the file
            sizes alone.

    Raises:
        RepoNotFoundError, GatedRepoError, NoGGUFError, HubOfflineError, HubServerError.
    """
    repo_id = repo_id.strip().strip("/")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise RepoNotFoundError(f"{repo_id!r} is not a repository name (expected owner/name).")
    _require_online()
    tok = resolve_token(token)
    with hub_errors(repo_id, bool(tok)):
        info = _api(tok).model_info(repo_id, files_metadata=True, timeout=API_TIMEOUT)
    revision = str(info.sha or "main")
    files = _siblings(info)
    models = group_gguf_files(repo_id, revision, files)
    if not models:
        raise NoGGUFError(
            f"{repo_id} has no GGUF files: slmdesk runs GGUF models (try searching for "
            f"'{repo_id.split('/')[-1]} GGUF')."
        )
    judge_fit(models, machine)
    card = None
    if with_card:
        try:
            card = fetch_model_card(repo_id, revision, token)
        except GatedRepoError:
            card = None  # the card sits behind the gate too; the listing is still useful
    card_data = getattr(info, "card_data", None)
    license_name = _license_from_tags(info.tags) or (
        str(card_data.get("license")) if card_data and card_data.get("license") else None
    )
    repo = RepoFiles(
        repo_id=repo_id,
        revision=revision,
        models=models,
        card_text=card,
        gated=bool(info.gated),
        license=license_name,
    )
    if not read_header:
        return repo
    every = [m.name for m in models] if read_header == "every" else None
    return with_header_estimates(repo, token, machine, every)


def with_header_estimates(
    repo: RepoFiles,
    token: str | None = None,
    machine: hardware.MachineInfo | None = None,
    files: list[str] | None = None,
) -> RepoFiles:
    """A copy of ``repo`` whose estimates come from GGUF headers read from the Hub.

    One reference file's header gives every sibling a close estimate; the single-file models
    named in ``files`` (at most `MAX_FILE_HEADERS`) also get their own header read, for exact
    facts and an exact estimate. Headers come from the cache when read before.

    The window shows a listing at once and calls this afterwards in the background: the models
    it already shows are left untouched (a copy is returned), so no thread changes what another
    reads. A header that cannot be read leaves its model with the size-only estimate ("≈"), and
    the reason is kept in ``header_problems`` of the copy.
    """
    models = [dataclasses.replace(m, files=list(m.files)) for m in repo.models]
    problems = dict(repo.header_problems)
    reference = _header_reference(models)
    wanted = [
        m for m in models if m.name in (files or ()) and len(m.files) == 1 and not m.is_projector
    ][:MAX_FILE_HEADERS]
    if reference is not None and reference not in wanted:
        wanted.insert(0, reference)
    read_any = False
    for model in wanted:
        if model.header is not None:
            read_any = True
            continue
        try:
            apply_file_facts(model, read_file_header(model, token))
            read_any = True
        except SlmdeskError as exc:
            log.info("no header for %s in %s: %s", model.name, repo.repo_id, exc)
            problems[model.name] = str(exc)
    if reference is not None:
        facts = reference.header or next((m.header for m in models if m.header), None)
        if facts is not None:
            apply_header_estimates(models, reference, facts)
    if read_any:
        judge_fit(models, machine or hardware.machine_info())
    return dataclasses.replace(repo, models=models, header_problems=problems)


def _model_named(repo: RepoFiles, wanted: str) -> RemoteModel:
    """The model of the file ``wanted``: an exact path wins; a bare name must be unambiguous.

    Raises:
        HubError: no such file, or a bare name that several files in different folders share.
    """
    for model in repo.models:
        if wanted in {f.filename for f in model.files} or (
            len(model.files) > 1 and wanted == _split_path(model)
        ):
            return model
    matches = [
        model
        for model in repo.models
        if wanted in {model.name, *(f.filename.rsplit("/", 1)[-1] for f in model.files)}
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        paths = ", ".join(
            _split_path(m) if len(m.files) > 1 else m.files[0].filename for m in matches
        )
        raise HubError(
            f"{repo.repo_id} has several files named {wanted!r} ({paths}); give the full path "
            "with --file."
        )
    raise HubError(
        f"{repo.repo_id} has no GGUF file {wanted!r} (see `slmdesk files {repo.repo_id}`)."
    )


def _split_path(model: RemoteModel) -> str:
    """A split model's folder and stem (``dir/model`` for ``dir/model-00001-of-00002.gguf``)."""
    first = model.files[0].filename
    folder = first[: len(first) - len(first.rsplit("/", 1)[-1])]
    return folder + model.name


def choose_model(
    repo: RepoFiles, filename: str | None = None, quant: str | None = None
) -> RemoteModel:
    """The model a ``pull`` means: by file name, by quantization, or the recommended one.

    A file name is first matched as an exact path in the repository (``dup/x.gguf`` or the
    root-level ``x.gguf``); only then as a bare name, which must not be shared by files in
    different folders (the error lists them).

    Raises:
        HubError: no file or quantization of that name, or nothing fits and none was named.
    """
    if filename:
        return _model_named(repo, filename.strip())
    if quant:
        q = quant.strip().upper()
        matches = [m for m in repo.models if (m.quantization or "").upper() == q]
        if not matches:
            have = sorted({m.quantization for m in repo.models if m.quantization})
            raise HubError(
                f"{repo.repo_id} has no {q} file; it offers: {', '.join(have) or 'unknown'}."
            )
        return min(matches, key=lambda m: (m.is_projector, m.size_bytes))
    rec = repo.recommended
    if rec is None:
        raise HubError(
            f"No file of {repo.repo_id} fits comfortably in this computer's memory; name one "
            "with --file or --quant to download it anyway."
        )
    return rec
