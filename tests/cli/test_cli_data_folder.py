"""A data folder that is read-only, not a folder, or on a full disk: one clear line, no traceback.

The commands run for real in subprocesses. Permissions are enforced for root through `setpriv`
(dropping the capabilities that override them); the full disk is a small real tmpfs mount (root
only), with an empty log file so that the first log line needs a new page and fails.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import (
    assert_clean_failure,
    assert_no_noise,
    has_control,
    run_cli,
)

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.hub import token as hf_token
from tests.fault_tools import unprivileged_prefix

HUB_TESTS = Path(__file__).resolve().parents[1] / "hub"


def _make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def _restore(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_empty_read_only_home_gives_one_line(tiny_model: Path, slmdesk_home: Path) -> None:
    _make_read_only(slmdesk_home)
    prefix = unprivileged_prefix()
    try:
        for args in (
            ("models", "list"),
            ("models", "list", "--json"),
            ("inspect", str(tiny_model)),
            ("models", "import", str(tiny_model), "--link"),
            ("chat", str(tiny_model), "--prompt", "hi", "--max-tokens", "2"),
            ("optimize", str(tiny_model), "--quant", "Q8_0", "--no-eval"),
        ):
            out = run_cli(*args, prefix=prefix)
            assert_no_noise(out)
            assert_clean_failure(out, "permission denied", str(slmdesk_home))
        assert run_cli("--version", prefix=prefix).returncode == 0
    finally:
        _restore(slmdesk_home)


def test_read_only_home_with_data_still_works(tiny_model: Path, slmdesk_home: Path) -> None:
    """Reading commands work; nothing is logged to the terminal instead of the log file."""
    assert run_cli("models", "import", str(tiny_model), "--link").returncode == 0
    log = slmdesk_home / "logs" / "slmdesk.log"
    log.unlink(missing_ok=True)  # the log cannot be created in the read-only folder
    _make_read_only(slmdesk_home)
    prefix = unprivileged_prefix()
    try:
        out = run_cli("models", "list", "--json", prefix=prefix)
        assert out.returncode == 0, out.stderr
        assert [m["name"] for m in json.loads(out.stdout)["models"]] == ["tiny-llama-F16"]
        assert run_cli("inspect", "tiny-llama-F16", prefix=prefix).returncode == 0
        out = run_cli(
            "chat", "tiny-llama-F16", "--prompt", "hi", "--max-tokens", "3", "--json",
            prefix=prefix,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert_no_noise(out)
        assert " INFO " not in out.stderr, out.stderr  # log records must not go to the terminal
        out = run_cli("models", "remove", "tiny-llama-F16", prefix=prefix)
        assert_no_noise(out)
        assert_clean_failure(out, "permission denied")
    finally:
        _restore(slmdesk_home)
    assert not log.exists()


@pytest.mark.parametrize(
    "args", [("models", "list"), ("inspect", "x.gguf"), ("chat", "x.gguf", "--prompt", "hi")]
)
def test_home_that_is_not_a_folder(args: tuple[str, ...]) -> None:
    out = run_cli(*args, env=dict(os.environ, SLMDESK_HOME=os.devnull))
    assert_no_noise(out)
    assert_clean_failure(out, os.devnull, "SLMDESK_HOME")


def test_data_folder_error_is_a_sentence_and_an_oserror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SLMDESK_HOME", str(blocker))
    with pytest.raises(paths.DataFolderError) as caught:
        paths.config_dir()
    assert isinstance(caught.value, SlmdeskError) and isinstance(caught.value, OSError)
    assert caught.value.errno in (errno.EEXIST, errno.ENOTDIR)
    message = str(caught.value)
    assert message.startswith("Cannot use ") and str(blocker) in message


def test_token_save_errors_are_sentences(slmdesk_home: Path) -> None:
    paths.token_path().mkdir(parents=True)  # a folder where the token file should go
    with pytest.raises(SlmdeskError, match="Cannot save the token"):
        hf_token.save_token("hf_abcdefghijklmnop")


# -- full disk -----------------------------------------------------------------------------------


@pytest.fixture
def full_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SLMDESK_HOME on a real, completely full 1 MB tmpfs (needs root to mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    home = tmp_path / "full-home"
    home.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(home)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace')}")
    try:
        for sub in ("models", "config", "cache", "logs"):
            (home / sub).mkdir()
        (home / "logs" / "slmdesk.log").touch()  # empty: its first line needs a new page
        fd = os.open(home / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        monkeypatch.setenv("SLMDESK_HOME", str(home))
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_full_disk_import_is_one_line(full_home: Path, tiny_model: Path) -> None:
    out = run_cli("models", "import", str(tiny_model), "--link")
    assert_no_noise(out)
    assert_clean_failure(out, "disk is full")


def test_full_disk_chat_still_replies(full_home: Path, tiny_model: Path) -> None:
    out = run_cli("chat", str(tiny_model), "--prompt", "hi", "--max-tokens", "3", "--json")
    assert_no_noise(out)
    assert out.returncode == 0, out.stderr
    assert "reply" in json.loads(out.stdout)


def test_full_disk_pull_is_one_line(
    full_home: Path, tiny_model_source: Path, tmp_path: Path
) -> None:
    sys.path.insert(0, str(HUB_TESTS))
    try:
        from hubserver import TINY_REPO, HubFile, LocalHub
    finally:
        sys.path.remove(str(HUB_TESTS))
    with LocalHub() as hub:
        hub.add_repo(TINY_REPO).add(HubFile.lfs("tiny-llama-F16.gguf", tiny_model_source))
        env = dict(os.environ, HF_ENDPOINT=hub.url)
        env.pop("HF_HUB_OFFLINE", None)
        env.pop("HF_TOKEN", None)
        out = run_cli("pull", TINY_REPO, env=env)
    assert_no_noise(out)
    line = assert_clean_failure(out, after_progress=True).lower()
    # Refused before the first byte (free-space check) or stopped at the write: both say so.
    assert "disk is full" in line or "not enough disk space" in line, line


# -- the internal-error path ---------------------------------------------------------------------

_FAILING_COMMAND = textwrap.dedent(
    """
    import importlib, importlib.machinery, sys, types

    cli_main = importlib.import_module("slmdesk.cli.entry")

    def register(sub):
        parser = sub.add_parser("boom")
        parser.set_defaults(func=lambda args: {}["a bug\\nwith two lines"])

    module = types.ModuleType("slmdesk.cli.boom")
    module.__spec__ = importlib.machinery.ModuleSpec("slmdesk.cli.boom", None)
    module.register = register
    sys.modules["slmdesk.cli.boom"] = module
    cli_main.COMMAND_MODULES += ("boom",)
    sys.exit(cli_main.main(["boom"]))
    """
)


def _run_failing_command(prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-c", _FAILING_COMMAND],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _report_of(out: subprocess.CompletedProcess[str]) -> Path:
    assert out.returncode == 1, out.stderr
    assert_no_noise(out)
    (line,) = out.stderr.splitlines()
    assert not has_control(line)
    prefix = "error: an internal error occurred; details in "
    assert line.startswith(prefix), line
    return Path(line[len(prefix) :])


def test_a_bug_is_logged_and_reported_in_one_line(slmdesk_home: Path) -> None:
    report = _report_of(_run_failing_command())
    assert report == slmdesk_home / "logs" / "slmdesk.log"
    text = report.read_text(encoding="utf-8")
    assert "Traceback" in text and "KeyError" in text and "slmdesk boom" in text


def test_a_bug_in_a_read_only_home_still_leaves_its_traceback(slmdesk_home: Path) -> None:
    _make_read_only(slmdesk_home)
    try:
        report = _report_of(_run_failing_command(unprivileged_prefix()))
    finally:
        _restore(slmdesk_home)
    try:
        assert not report.is_relative_to(slmdesk_home)
        text = report.read_text(encoding="utf-8")
        assert "Traceback" in text and "KeyError" in text
    finally:
        report.unlink(missing_ok=True)


def test_os_errors_the_user_can_fix_are_sentences(tmp_path: Path) -> None:
    from slmdesk.cli.entry import describe_os_error

    existing = tmp_path / "library.json"
    existing.write_text("{}")
    new = tmp_path / ".library.json.tmp"
    full = describe_os_error(OSError(errno.ENOSPC, "No space left on device"))
    assert full == "Cannot write a file: the disk is full; free some space and try again."
    denied = describe_os_error(PermissionError(errno.EACCES, "Permission denied", str(new)))
    assert denied == f"Cannot write a new file in {tmp_path}: permission denied."
    read_only = describe_os_error(OSError(errno.EROFS, "Read-only file system", str(existing)))
    assert read_only == f"Cannot write {existing}: the disk is read-only."
    assert describe_os_error(OSError(errno.ENAMETOOLONG, "File name too long", "x" * 300))
    assert describe_os_error(OSError(errno.EBADF, "Bad file descriptor")) is None  # a bug
