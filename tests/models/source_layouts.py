"""Other apps' model folders built in a temporary folder, following each layout's public docs.

- Hugging Face cache ("Manage the cache" guide): ``models--ORG--NAME/{blobs,refs,snapshots}``,
  ``refs/main`` holding a commit hash, snapshot files as relative symlinks into ``blobs/``.
- Ollama: ``manifests/HOST/NAMESPACE/MODEL/TAG`` (JSON with ``schemaVersion``, ``mediaType``,
  ``config`` and ``layers`` carrying media types and ``sha256:`` digests), ``blobs/sha256-HEX``.
- LM Studio: ``models/PUBLISHER/REPO/FILE.gguf``; GPT4All: flat ``*.gguf``; Jan:
  ``models/ID/{model.json,FILE.gguf}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def put_file(source: Path, target: Path) -> Path:
    """A copy of ``source`` at ``target`` (a hard link where possible: same bytes, less disk)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return target  # content-addressed stores keep one blob for the same bytes
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


def hf_repo(
    cache: Path, repo_id: str, model: Path, files: list[str], revision: str = "a" * 40
) -> list[Path]:
    """A repo in a Hugging Face cache whose snapshot holds ``files`` (symlinks to one blob each).

    Returns:
        The snapshot paths of the files.
    """
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    made = []
    for i, name in enumerate(files):
        blob = repo / "blobs" / f"{_sha256(model)[:60]}{i:04d}"
        put_file(model, blob)
        link = snapshot / name
        link.symlink_to(os.path.relpath(blob, snapshot))
        made.append(link)
    return made


def ollama_manifest(blob_digest: str, extra_layers: list[dict[str, Any]] | None = None) -> str:
    """A manifest as Ollama writes it, naming its model layer by digest."""
    layers = [{"mediaType": MODEL_MEDIA_TYPE, "digest": blob_digest, "size": 1}]
    layers += extra_layers or [
        {
            "mediaType": "application/vnd.ollama.image.template",
            "digest": "sha256:" + "1" * 64,
            "size": 20,
        },
        {
            "mediaType": "application/vnd.ollama.image.license",
            "digest": "sha256:" + "2" * 64,
            "size": 30,
        },
    ]
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": "sha256:" + "3" * 64,
                "size": 485,
            },
            "layers": layers,
        }
    )


def ollama_model(
    store: Path,
    model: Path,
    name: str,
    tag: str,
    namespace: str = "library",
    host: str = "registry.ollama.ai",
) -> Path:
    """A model pulled into an Ollama store; returns its blob."""
    digest = _sha256(model)
    blob = put_file(model, store / "blobs" / f"sha256-{digest}")
    manifest = store / "manifests" / host / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(ollama_manifest(f"sha256:{digest}"))
    return blob


def lmstudio_model(models: Path, model: Path, publisher: str, repo: str, file: str) -> Path:
    """A file downloaded by LM Studio."""
    return put_file(model, models / publisher / repo / file)


def jan_model(root: Path, model: Path, model_id: str, title: str | None = None) -> Path:
    """A model folder in Jan's data folder (``model.json`` naming it, as Jan before 0.6)."""
    folder = root / "models" / model_id
    folder.mkdir(parents=True, exist_ok=True)
    if title is not None:
        (folder / "model.json").write_text(json.dumps({"id": model_id, "name": title}))
    return put_file(model, folder / f"{model_id}.gguf")
