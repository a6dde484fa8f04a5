"""Library listing benchmark: 200 models spread over five folders of other apps, listed in place.

``python -m bench library_list [--models N] [--rounds N]``

Builds, in a temporary folder, an "apps home" holding a Hugging Face cache (snapshot symlinks into
``blobs/``), an Ollama store (manifests naming ``sha256-`` blobs), LM Studio's and GPT4All's
folders, plus one folder added by hand: N tiny real GGUF models (``models.synth``) in all, one
fifth in each, every file distinct (its ``general.name`` differs). Then measures, each listing
being ``Library().entries()`` (every header fact a row shows):

- cold: a fresh process with an empty library index, so every header is read (target < 2 s);
- warm: the same listing again in that process, facts from memory (target < 0.3 s);
- warm, new process: a fresh process once a sync has kept the facts in the index (app start);
- baseline: the same N files registered one by one as linked files (``models import --link``),
  listed cold and warm the same way.

Times are measured inside the process (interpreter start and imports excluded; reported apart).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, print_figures, save_results

COLD_TARGET = 2.0
WARM_TARGET = 0.3
_NAME = b"Tiny Llama Test"  # the synthesized model's general.name: patched per copy

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from slmdesk.models.library import Library
imported = time.perf_counter() - t0
rounds = int(sys.argv[1])
start = time.perf_counter()
library = Library()
entries = library.entries()
cold = time.perf_counter() - start
warm = []
for _ in range(rounds):
    start = time.perf_counter()
    again = library.entries()
    warm.append(time.perf_counter() - start)
if sys.argv[2] == "sync":
    library.sync_sources()
print(json.dumps({"import_s": imported, "first_s": cold, "warm_s": warm,
                  "models": len(entries), "ok": sum(e.status == "ok" for e in entries)}))
"""


def _variant(model: bytes, index: int) -> bytes:
    name = f"Tiny Llama {index:04d}".encode()
    assert len(name) == len(_NAME)
    return model.replace(_NAME, name, 1)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def build(root: Path, count: int) -> tuple[Path, Path, list[Path]]:
    """The five folders with ``count`` models; returns (apps home, added folder, all files)."""
    from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

    model = write_tiny_llama(root / "seed.gguf", TinyModelSpec(n_layers=1, n_ff=256)).read_bytes()
    home = root / "apps-home"
    added = root / "external" / "my-models"
    files: list[Path] = []
    for i in range(count):
        data = _variant(model, i)
        kind = i % 5
        if kind == 0:  # Hugging Face cache
            repo = home / ".cache" / "huggingface" / "hub" / f"models--org--Tiny-{i:04d}-GGUF"
            revision = f"{i:040x}"
            blob = _write(repo / "blobs" / hashlib.sha256(data).hexdigest(), data)
            (repo / "refs").mkdir(parents=True, exist_ok=True)
            (repo / "refs" / "main").write_text(revision)
            link = repo / "snapshots" / revision / f"tiny-{i:04d}-Q8_0.gguf"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
            files.append(link)
        elif kind == 1:  # Ollama
            store = home / ".ollama" / "models"
            digest = hashlib.sha256(data).hexdigest()
            files.append(_write(store / "blobs" / f"sha256-{digest}", data))
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "layers": [
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": f"sha256:{digest}",
                        "size": len(data),
                    }
                ],
            }
            tag = store / "manifests" / "registry.ollama.ai" / "library" / f"tiny{i:04d}" / "1b"
            _write(tag, json.dumps(manifest).encode())
        elif kind == 2:  # LM Studio
            lm = home / ".lmstudio" / "models" / "lmstudio-community" / f"Tiny-{i:04d}-GGUF"
            files.append(_write(lm / f"Tiny-{i:04d}-Q8_0.gguf", data))
        elif kind == 3:  # GPT4All
            gpt = home / ".local" / "share" / "nomic.ai" / "GPT4All"
            files.append(_write(gpt / f"tiny-{i:04d}.Q8_0.gguf", data))
        else:  # a folder added by hand
            files.append(_write(added / f"sub{i % 3}" / f"tiny-{i:04d}.gguf", data))
    return home, added, files


def _child(env: dict[str, str], rounds: int, sync: bool) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(rounds), "sync" if sync else "-"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _env(data_home: Path, apps_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("HF_HUB_CACHE", "HF_HOME", "OLLAMA_MODELS", "XDG_CACHE_HOME"):
        env.pop(name, None)
    env["SLMDESK_HOME"] = str(data_home)
    env["SLMDESK_APP_FOLDERS_HOME"] = str(apps_home)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return env


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench library_list")
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="slmdesk-bench-list-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        apps_home, added, files = build(root, args.models)
        print(f"built {len(files)} models in five folders in {time.perf_counter() - started:.1f} s")

        sources_env = _env(root / "data-sources", apps_home)
        add = subprocess.run(
            [sys.executable, "-m", "slmdesk", "models", "sources", "add", str(added)],
            env=sources_env,
            capture_output=True,
            text=True,
        )
        if add.returncode != 0:
            print(add.stderr, file=sys.stderr)
            return 1
        # adding the folder synced the sources but read no header: the first listing is cold
        cold = _child(sources_env, args.rounds, sync=True)
        restart = _child(sources_env, args.rounds, sync=False)

        linked_env = _env(root / "data-linked", root / "no-apps")
        (root / "no-apps").mkdir()
        link_code = (
            "import sys\nfrom slmdesk.models.library import Library\nlib = Library()\n"
            "for p in sys.argv[1:]:\n    lib.import_model(p, copy=False)\n"
        )
        subprocess.run(
            [sys.executable, "-c", link_code, *map(str, files)], env=linked_env, check=True
        )
        linked = _child(linked_env, args.rounds, sync=False)

    figures = {
        "models": args.models,
        "folders": 5,
        "listed": cold["models"],
        "listed_ok": cold["ok"],
        "cold_s": round(cold["first_s"], 4),
        "warm_s": round(median(cold["warm_s"]), 4),
        "new_process_index_facts_s": round(restart["first_s"], 4),
        "import_slmdesk_library_s": round(cold["import_s"], 4),
        "baseline_linked_cold_with_index_facts_s": round(linked["first_s"], 4),
        "baseline_linked_warm_s": round(median(linked["warm_s"]), 4),
        "targets": {"cold_s": COLD_TARGET, "warm_s": WARM_TARGET},
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    ok = figures["cold_s"] < COLD_TARGET and figures["warm_s"] < WARM_TARGET
    print_figures(
        f"Listing {args.models} models over 5 folders (Library().entries(), in-process time)",
        [
            ("cold: new process, no facts cached", f"{figures['cold_s']:.3f} s", "< 2 s"),
            ("warm: same process again (median)", f"{figures['warm_s']:.3f} s", "< 0.3 s"),
            (
                "new process, facts from the index",
                f"{figures['new_process_index_facts_s']:.3f} s",
                "",
            ),
            (
                "baseline: same files linked one by one, new process",
                f"{figures['baseline_linked_cold_with_index_facts_s']:.3f} s",
                "",
            ),
            ("baseline: linked, warm (median)", f"{figures['baseline_linked_warm_s']:.3f} s", ""),
            ("importing the library package", f"{figures['import_slmdesk_library_s']:.3f} s", ""),
        ],
    )
    print(
        f"\n{'PASS' if ok else 'FAIL'} · listed {cold['models']} ({cold['ok']} ok) · "
        f"load average {figures['load_average_1min']} on {os.cpu_count()} cores"
    )
    save_results("library_list", figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
