"""Download benchmark against the local Hub: throughput, bytes re-fetched after a cut, memory.

``python -m bench download [--runs N]``

Figures, all measured in this run:

- throughput ratio: time of a plain streaming GET of the 253 MB Gemma 3 270M file with the same
  HTTP library (httpx2) writing to a file ÷ time of slmdesk's downloader moving the same bytes
  (HEAD, GET, write, SHA-256 and size verified). Target >= 0.9.
- end-to-end ratio (information): the same, including fsync, the atomic move and registering the
  model in the library (which parses the GGUF header).
- bytes re-downloaded after the connection is cut at 60%: target <= one chunk (64 KiB).
- peak RSS growth during the download: flat (no file-sized buffer), target < 64 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.common import gemma_file, go_online_for_local_hub, median, print_figures, save_results

CHUNK = 64 * 1024  # the network read size of the HTTP stack
REPO = "bench/gemma-3-270m-GGUF"
FILENAME = "gemma-3-270m-Q4_K_M.gguf"


class _PeakRSS:
    """Samples this process's resident memory every few milliseconds on a named thread."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.start_rss = self._proc.memory_info().rss
        self.peak = self.start_rss
        self._thread = threading.Thread(target=self._run, name="slmdesk-bench-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start_rss


def _plain_get(url: str, target: Path, sha256: bool = False) -> float:
    """Seconds for a plain streaming GET of ``url`` into ``target`` (httpx2, like slmdesk)."""
    import hashlib

    import httpx2

    digest = hashlib.sha256()
    start = time.perf_counter()
    with (
        httpx2.Client(follow_redirects=True, timeout=60) as client,
        client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as resp,
        open(target, "wb") as out,
    ):
        resp.raise_for_status()
        for piece in resp.iter_raw():
            out.write(piece)
            if sha256:
                digest.update(piece)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


_SERVER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from hubserver import HubFile, LocalHub
hub = LocalHub().start()
hub.add_repo(sys.argv[2]).add(HubFile.lfs(sys.argv[3], Path(sys.argv[4])))
print(hub.url, flush=True)
sys.stdin.read()  # serve until the benchmark closes our input
hub.stop()
"""


def _hub_process(hub_dir: Path, gemma_path: Path) -> tuple[subprocess.Popen[str], str]:
    """The local Hub in its own process, as a real Hub is on another machine: its threads do not
    share this process's interpreter lock with the download being measured."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(hub_dir), REPO, FILENAME, str(gemma_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip() if proc.stdout else ""
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError("the local Hub process did not start")
    return proc, url


def _fresh_home(root: Path) -> Path:
    home = root / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["SLMDESK_HOME"] = str(home)
    return home


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench download")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (median)")
    args = parser.parse_args(argv)

    gemma_path = gemma_file()
    if gemma_path is None:
        return 1

    hub_dir = go_online_for_local_hub()
    from hubserver import HubFile, LocalHub  # the same local Hub the tests use

    from slmdesk.hub import listing as hub_api
    from slmdesk.hub.downloads import DownloadOptions, DownloadStatus, download_model

    size = gemma_path.stat().st_size
    root = Path(tempfile.mkdtemp(prefix="slmdesk-bench-download-"))
    server, server_url = _hub_process(hub_dir, gemma_path)
    local = LocalHub().start()
    try:
        local.add_repo(REPO).add(HubFile.lfs(FILENAME, gemma_path))
        os.environ["HF_ENDPOINT"] = server_url
        _fresh_home(root)
        model = hub_api.choose_model(
            hub_api.list_repo_models(REPO, with_card=False), filename=FILENAME
        )
        url = hub_api.file_url(REPO, FILENAME, model.revision)
        options = DownloadOptions(backoff=0.05)

        plain_times: list[float] = []
        ours_times: list[float] = []
        total_times: list[float] = []
        hashed_times: list[float] = []
        rss_growth: list[int] = []
        _plain_get(url, root / "warmup.bin")  # page cache warm for both
        for _ in range(args.runs):
            plain_times.append(_plain_get(url, root / "plain.bin"))
            hashed_times.append(_plain_get(url, root / "plain.bin", sha256=True))
            _fresh_home(root)
            marks: dict[str, float] = {}

            def on_progress(st: DownloadStatus, marks: dict[str, float] = marks) -> None:
                marks.setdefault(str(st.state), time.perf_counter())

            with _PeakRSS() as rss:
                start = time.perf_counter()
                status = download_model(model, progress=on_progress, options=options)
                end = time.perf_counter()
            # Bytes through the downloader: HEAD, ranged GET, write, SHA-256, size check.
            ours_times.append(marks["verifying"] - start)
            total_times.append(end - start)
            rss_growth.append(rss.growth)
            assert status.state == "done"

        # The cut test needs the Hub's fault switches and request log: an in-process Hub.
        os.environ["HF_ENDPOINT"] = local.url
        model = hub_api.choose_model(
            hub_api.list_repo_models(REPO, with_card=False), filename=FILENAME
        )
        _fresh_home(root)
        local.reset_log()
        local.faults.cut_after = int(size * 0.6)
        local.faults.cut_times = 1
        status = download_model(model, options=options)
        assert status.state == "done"
        refetched = local.bytes_served() - size
        ranges = [r.range for r in local.cdn_requests()]
    finally:
        local.stop()
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)

    plain = median(plain_times)
    ours = median(ours_times)
    ratio = plain / ours
    total = median(total_times)
    figures = {
        "file_bytes": size,
        "plain_get_seconds": plain,
        "slmdesk_download_seconds": ours,
        "plain_get_mb_per_s": size / plain / 1e6,
        "slmdesk_mb_per_s": size / ours / 1e6,
        "throughput_ratio": ratio,
        "plain_get_with_sha256_seconds": median(hashed_times),
        "ratio_vs_plain_get_with_sha256": median(hashed_times) / ours,
        "end_to_end_seconds": total,
        "end_to_end_ratio": plain / total,
        "refetched_bytes_after_cut_at_60pct": refetched,
        "chunk_bytes": CHUNK,
        "resume_ranges": ranges,
        "peak_rss_growth_bytes": max(rss_growth),
        "runs": args.runs,
    }
    print_figures(
        "Download from the local Hub (Gemma 3 270M Q4_K_M, 253 MB)",
        [
            ("throughput vs plain GET", f"{ratio:.2f}", ">= 0.9"),
            (
                "slmdesk MB/s",
                f"{size / ours / 1e6:.0f}",
                f"plain GET {size / plain / 1e6:.0f} MB/s",
            ),
            ("bytes re-fetched after cut at 60%", f"{refetched:,}", f"<= {CHUNK:,} (one chunk)"),
            ("peak RSS growth", f"{max(rss_growth) / 1e6:.1f} MB", "flat (< 64 MB)"),
        ],
    )
    path = save_results("download", figures)
    print(f"\nsaved {path}")
    ok = ratio >= 0.9 and refetched <= CHUNK and max(rss_growth) < 64e6
    return 0 if ok else 1
