"""A hostile or broken Hub: lying sizes, endless bodies, refusals, rate limits, hostile names.

Every download here runs against the real local Hub (tests/hub/hubserver.py) and is bounded in
time: it runs on a thread with a pause event that is set if it has not ended by the deadline, so
a download that would loop forever fails the test instead of hanging it.
"""

from __future__ import annotations

import email.utils
import json
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from hubserver import (
    HOSTILE_NAMES,
    HOSTILE_REPO,
    HOSTILE_REPO_ID,
    HubFile,
    LocalHub,
    add_hostile_repo,
)

from slmdesk.common import paths
from slmdesk.common.format import printable
from slmdesk.hub import listing as hub
from slmdesk.hub.downloads import DownloadError, DownloadOptions, DownloadStatus, download_model
from slmdesk.hub.listing import HubError, RemoteModel
from slmdesk.models import hardware
from slmdesk.models.library import Library

FAST = DownloadOptions(retries=3, backoff=0.02, read_timeout=10, server_retries=2)
BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)
DEADLINE = 90.0  # seconds: far beyond what a bounded download needs, even on a loaded machine
LIAR_REPO = "slmtest/liar-GGUF"


def _model(repo_id: str, name: str) -> RemoteModel:
    listing = hub.list_repo_models(repo_id, machine=BIG_MACHINE, with_card=False)
    return hub.choose_model(listing, filename=name)


def _bounded_download(
    model: RemoteModel, options: DownloadOptions = FAST
) -> DownloadStatus | BaseException:
    """Run the download on a thread; pause it at `DEADLINE` and fail if it did not end by itself."""
    stop = threading.Event()
    outcome: list[DownloadStatus | BaseException] = []

    def run() -> None:
        try:
            outcome.append(download_model(model, stop=stop, options=options))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="test-bounded-download")
    thread.start()
    thread.join(DEADLINE)
    ended_by_itself = not thread.is_alive()
    stop.set()
    thread.join(60)
    assert ended_by_itself, f"the download was still running after {DEADLINE:.0f} s"
    return outcome[0]


def _partials() -> list[Path]:
    return list(paths.models_dir().glob("*.incomplete"))


def _liar(local_hub: LocalHub, source: Path, declared: int) -> HubFile:
    """A repository whose listing (and HEAD) says ``declared`` bytes for a real file."""
    file = local_hub.add_repo(LIAR_REPO).add(HubFile.lfs("liar-Q4_K_M.gguf", source))
    file.declared_size = declared
    return file


# -- 1. sizes that disagree with the listing ---------------------------------------------------


@pytest.mark.parametrize("extra", [1000, -1000], ids=["listed-larger", "listed-smaller"])
def test_a_lying_size_stops_after_one_fresh_retry(
    local_hub: LocalHub, tiny_model_source: Path, extra: int
) -> None:
    real = tiny_model_source.stat().st_size
    _liar(local_hub, tiny_model_source, real + extra)
    outcome = _bounded_download(_model(LIAR_REPO, "liar-Q4_K_M.gguf"))
    assert isinstance(outcome, DownloadError), outcome
    assert str(outcome) == (
        f"The Hub lists {real + extra:,} bytes for liar-Q4_K_M.gguf but sends {real:,}: the "
        "download was stopped and the partial file removed."
    )
    assert not outcome.retryable
    assert len(local_hub.cdn_requests()) == 2  # the first attempt and one fresh retry
    assert _partials() == []
    assert Library().entries() == []


def test_a_file_that_ends_short_again_after_a_resume_is_refused(
    local_hub: LocalHub, tiny_model_source: Path
) -> None:
    # The CDN hides the size (no Content-Length): the short end shows only when the body ends,
    # and the resume that follows finds the file ends there.
    real = tiny_model_source.stat().st_size
    _liar(local_hub, tiny_model_source, real + 4096)
    local_hub.faults.no_length = True
    outcome = _bounded_download(_model(LIAR_REPO, "liar-Q4_K_M.gguf"))
    assert isinstance(outcome, DownloadError), outcome
    assert f"lists {real + 4096:,} bytes for liar-Q4_K_M.gguf but sends {real:,}" in str(outcome)
    assert "the download was stopped" in str(outcome)
    ranges = [r.range for r in local_hub.cdn_requests()]
    assert ranges == [None, f"bytes={real}-", None, f"bytes={real}-"]
    assert _partials() == []


def test_a_head_that_contradicts_the_listing_stops_and_removes_the_partial_file(
    local_hub: LocalHub, tiny_model_source: Path
) -> None:
    size = tiny_model_source.stat().st_size
    model = _model("slmtest/tiny-llama-GGUF", "tiny-llama-F16.gguf")
    local_hub.faults.cut_after = 1_000_000
    local_hub.faults.status = 503
    local_hub.faults.status_times = 100
    local_hub.faults.status_skip = 1
    first = _bounded_download(model)
    assert isinstance(first, DownloadError) and first.retryable, first
    assert [p.stat().st_size for p in _partials()] == [1_000_000]
    # The retry's HEAD now gives another size for the same checksum.
    local_hub.faults.status = None
    local_hub.faults.head_size = size * 2
    local_hub.reset_log()
    second = _bounded_download(model)
    assert isinstance(second, DownloadError), second
    assert str(second) == (
        f"The Hub lists {size:,} bytes for tiny-llama-F16.gguf but sends {size * 2:,}: the "
        "download was stopped and the partial file removed."
    )
    assert not second.retryable
    assert local_hub.cdn_requests() == []
    assert _partials() == []


def test_an_endless_body_is_cut_at_the_listed_size_and_refused(
    local_hub: LocalHub, tiny_model_source: Path
) -> None:
    size = tiny_model_source.stat().st_size
    local_hub.faults.endless = True
    written: list[int] = []

    def watch(status: DownloadStatus) -> None:
        written.extend(p.stat().st_size for p in _partials())

    model = _model("slmtest/tiny-llama-GGUF", "tiny-llama-F16.gguf")
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:  # the local Hub's endless body ends by itself
        download_model(model, progress=watch, options=FAST)
    assert time.monotonic() - started < DEADLINE
    assert str(info.value) == (
        f"The Hub lists {size:,} bytes for tiny-llama-F16.gguf but sends more: the download "
        "was stopped and the partial file removed."
    )
    assert not info.value.retryable
    assert written and max(written) <= size  # never a byte past the listed size on disk
    assert len(local_hub.cdn_requests()) == 2
    assert _partials() == []


# -- 2. HTTP errors: refused, rate-limited, failing --------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, "tiny-llama-F16.gguf is no longer on the Hub (HTTP 404): the download was stopped"),
        (410, "tiny-llama-F16.gguf is no longer on the Hub (HTTP 410): the download was stopped"),
        (400, "The Hub refused to send tiny-llama-F16.gguf (HTTP 400): the download was stopped"),
    ],
)
def test_a_refusal_fails_at_once(local_hub: LocalHub, status: int, expected: str) -> None:
    local_hub.faults.cut_after = 1_000_000
    local_hub.faults.status = status
    local_hub.faults.status_times = 100
    local_hub.faults.status_skip = 1  # 1 MB arrives first: then the file is gone
    slow = DownloadOptions(retries=3, backoff=2.0, read_timeout=10, server_retries=2)
    started = time.monotonic()
    outcome = _bounded_download(_model("slmtest/tiny-llama-GGUF", "tiny-llama-F16.gguf"), slow)
    assert isinstance(outcome, DownloadError), outcome
    assert str(outcome).startswith(expected)
    assert "resume" not in str(outcome)
    assert not outcome.retryable
    assert [r.status for r in local_hub.cdn_requests()] == [200, status]  # not retried
    assert time.monotonic() - started < 20  # one 2 s wait after the cut, none after the refusal
    assert _partials() == []  # nothing can complete it


def test_rate_limit_honours_retry_after(local_hub: LocalHub, tiny_model_source: Path) -> None:
    local_hub.faults.status = 429
    local_hub.faults.status_times = 2
    local_hub.faults.retry_after = "1"
    started = time.monotonic()
    outcome = _bounded_download(_model("slmtest/tiny-llama-GGUF", "tiny-llama-F16.gguf"))
    elapsed = time.monotonic() - started
    assert isinstance(outcome, DownloadStatus), outcome
    assert outcome.state.value == "done"
    assert [r.status for r in local_hub.cdn_requests()] == [429, 429, 200]
    assert elapsed >= 1.9  # waited as asked, not the 0.02 s backoff
    assert elapsed < DEADLINE


def test_rate_limit_beyond_the_bound_is_reported_at_once(local_hub: LocalHub) -> None:
    local_hub.faults.status = 429
    local_hub.faults.status_times = 100
    local_hub.faults.retry_after = "3600"
    outcome = _bounded_download(_model("slmtest/tiny-llama-GGUF", "tiny-llama-F16.gguf"))
    assert isinstance(outcome, DownloadError), outcome
    assert str(outcome) == (
        "The Hub is rate-limiting downloads of tiny-llama-F16.gguf: the download was stopped; "
        "retry in 1 h 00 min (the bytes already downloaded are kept)."
    )
    assert outcome.retryable
    assert len(local_hub.cdn_requests()) == 1


def test_rate_limit_without_end_stops_after_a_few_waits(local_hub: LocalHub) -> None:
    local_hub.faults.status = 429
    local_hub.faults.status_times = 100
    local_hub.faults.retry_after = "0"
    outcome = _bounded_download(_model("slmtest/tiny-llama-GGUF", "tiny-llama-F16.gguf"))
    assert isinstance(outcome, DownloadError), outcome
    assert "The Hub is rate-limiting downloads of tiny-llama-F16.gguf" in str(outcome)
    assert len(local_hub.cdn_requests()) == 1 + FAST.server_retries


def test_a_failing_hub_is_named_after_a_few_retries(local_hub: LocalHub) -> None:
    local_hub.faults.status = 503
    local_hub.faults.status_times = 100
    outcome = _bounded_download(_model("slmtest/tiny-llama-GGUF", "tiny-llama-F16.gguf"))
    assert isinstance(outcome, DownloadError), outcome
    assert str(outcome).startswith(
        f"The Hub is failing (HTTP 503, {1 + FAST.server_retries} attempts) for "
        "tiny-llama-F16.gguf: the download was stopped"
    )
    assert "will resume" not in str(outcome)
    assert outcome.retryable
    assert len(local_hub.cdn_requests()) == 1 + FAST.server_retries


# -- 3. hostile names --------------------------------------------------------------------------


def _has_controls(text: str, allowed: str = "\n") -> bool:
    return any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") and ch not in allowed
        for ch in text
    )


def test_printable_shows_controls_as_escapes() -> None:
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("\u202eexe.gguf") == "\\u202eexe.gguf"
    assert printable("c1\x9b") == "c1\\x9b"
    assert printable("bad\ud800") == "bad\\ud800"
    assert printable("line\nnext\tcol", keep_newlines=True) == "line\nnext\tcol"
    assert printable("line\nnext") == "line\\x0anext"
    assert printable("Q4_K_M · ★ modèle") == "Q4_K_M · ★ modèle"


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert hub.retry_after_seconds("7") == 7.0
    assert hub.retry_after_seconds(None) is None
    assert hub.retry_after_seconds("soon") is None
    assert hub.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 <= (hub.retry_after_seconds(later) or 0) <= 121


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_files_and_search_neutralise_hostile_names(
    hub_env: dict[str, str], local_hub: LocalHub, tiny_model_source: Path
) -> None:
    add_hostile_repo(local_hub, tiny_model_source)
    text = _cli(hub_env, "files", HOSTILE_REPO)
    assert text.returncode == 0, text.stderr
    assert not _has_controls(text.stdout + text.stderr)
    for name in HOSTILE_NAMES:
        assert printable(name) in text.stdout
    # JSON keeps the exact names (escaped by JSON itself).
    raw = _cli(hub_env, "files", HOSTILE_REPO, "--json")
    assert raw.returncode == 0, raw.stderr
    assert not _has_controls(raw.stdout)
    assert {f["name"] for f in json.loads(raw.stdout)["files"]} == set(HOSTILE_NAMES)

    found = _cli(hub_env, "search", "GGUF", "--limit", "50")
    assert found.returncode == 0, found.stderr
    assert not _has_controls(found.stdout + found.stderr)
    assert printable(HOSTILE_REPO_ID) in found.stdout
    found_json = json.loads(_cli(hub_env, "search", "GGUF", "--limit", "50", "--json").stdout)
    assert HOSTILE_REPO_ID in {r["repo_id"] for r in found_json["results"]}


def test_pull_progress_neutralises_a_hostile_name(
    hub_env: dict[str, str], local_hub: LocalHub, tiny_model_source: Path
) -> None:
    add_hostile_repo(local_hub, tiny_model_source)
    proc = _cli(hub_env, "pull", HOSTILE_REPO, "--quant", "Q4_K_M")
    assert proc.returncode == 0, proc.stderr
    assert not _has_controls(proc.stdout + proc.stderr)
    assert printable(HOSTILE_NAMES[0]) in proc.stderr


def test_discover_table_neutralises_hostile_names(
    qtbot, local_hub: LocalHub, tiny_model_source: Path
) -> None:
    from slmdesk.app import build_window
    from slmdesk.hub.downloads import State
    from slmdesk.ui.discover.view import DownloadRow

    add_hostile_repo(local_hub, tiny_model_source)
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    try:
        controller = parts.discover_controller
        assert controller is not None
        controller.open_repo(HOSTILE_REPO)
        files = controller.view.files
        qtbot.waitUntil(lambda: files.rowCount() == len(HOSTILE_NAMES), timeout=60_000)
        shown = [files.item(r, 0).text() for r in range(files.rowCount())]
        assert not any(_has_controls(text) for text in shown)
        assert {text.removeprefix("★ ") for text in shown} == {printable(n) for n in HOSTILE_NAMES}
        assert not _has_controls(controller.view.repo_title.text())
        # A download row quotes the name in rich text: escaped, and markup stays text.
        row = DownloadRow("t1")
        qtbot.addWidget(row)
        row.show_status(
            DownloadStatus(
                "t1", HOSTILE_REPO_ID, "<i>x</i>\u202e.gguf", State.FAILED, 0, 10, error="\x1b[2J"
            )
        )
        assert not _has_controls(row.name.text() + row.error.text())
        assert "&lt;i&gt;x&lt;/i&gt;\\u202e.gguf" in row.name.text()
        assert row.error.text() == "\\x1b[2J"
    finally:
        parts.window.close()
        parts.shutdown()


# -- 4. --file NAME: an exact path wins, a shared bare name is ambiguous -------------------------


@pytest.fixture
def dup_repo(local_hub: LocalHub, tiny_model_source: Path, tmp_path: Path) -> str:
    bigger = tmp_path / "bigger.gguf"
    bigger.write_bytes(tiny_model_source.read_bytes() + b"\0" * 8192)
    repo = local_hub.add_repo("slmtest/dup-GGUF")
    repo.add(HubFile.lfs("model-Q4_K_M.gguf", bigger))  # the root file, larger...
    repo.add(HubFile.lfs("dup/model-Q4_K_M.gguf", tiny_model_source))  # ...than this one
    repo.add(HubFile.lfs("a/other-Q8_0.gguf", tiny_model_source))
    repo.add(HubFile.lfs("b/other-Q8_0.gguf", bigger))
    return "slmtest/dup-GGUF"


def test_file_exact_path_wins(local_hub: LocalHub, dup_repo: str) -> None:
    listing = hub.list_repo_models(dup_repo, machine=BIG_MACHINE, with_card=False)
    root = hub.choose_model(listing, filename="model-Q4_K_M.gguf")
    assert [f.filename for f in root.files] == ["model-Q4_K_M.gguf"]
    nested = hub.choose_model(listing, filename="dup/model-Q4_K_M.gguf")
    assert [f.filename for f in nested.files] == ["dup/model-Q4_K_M.gguf"]
    picked = hub.choose_model(listing, filename="a/other-Q8_0.gguf")
    assert [f.filename for f in picked.files] == ["a/other-Q8_0.gguf"]


def test_file_ambiguous_bare_name_lists_the_paths(
    local_hub: LocalHub, dup_repo: str, hub_env: dict[str, str]
) -> None:
    listing = hub.list_repo_models(dup_repo, machine=BIG_MACHINE, with_card=False)
    with pytest.raises(HubError) as info:
        hub.choose_model(listing, filename="other-Q8_0.gguf")
    assert str(info.value) == (
        "slmtest/dup-GGUF has several files named 'other-Q8_0.gguf' (a/other-Q8_0.gguf, "
        "b/other-Q8_0.gguf); give the full path with --file."
    )
    proc = _cli(hub_env, "pull", dup_repo, "--file", "other-Q8_0.gguf")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: slmtest/dup-GGUF has several files named")
    assert "Traceback" not in proc.stderr
    assert local_hub.cdn_requests() == []
