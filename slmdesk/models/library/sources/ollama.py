"""Ollama's model store: ``manifests/HOST/NAMESPACE/MODEL/TAG`` naming blobs by digest.

Layout (Ollama's ``server/internal/manifest`` package docs and its model storage docs): a
manifest is a small JSON object whose ``layers`` each carry a ``mediaType``, a ``digest``
(``sha256:<64 hex>``) and a ``size``; the layer with media type
``application/vnd.ollama.image.model`` is the GGUF file, stored as ``blobs/sha256-<hex>``. The
model is listed under its Ollama name: ``llama3.2:1b`` for the official library
(``registry.ollama.ai/library``), ``user/model:tag`` for other namespaces on that registry, and
``host/namespace/model:tag`` elsewhere (``hf.co/...``).

Manifests are hostile input: each is read only up to `base.MAX_JSON_BYTES`, a digest must be
exactly ``sha256:`` and 64 hex digits (so it cannot point outside ``blobs/``), and the blob must
start with the GGUF magic (Ollama also stores safetensors and adapters).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from slmdesk.models.library.sources.base import (
    OLLAMA,
    Found,
    Scan,
    entries_of,
    is_dir,
    is_file,
    read_small_json,
    starts_with_gguf_magic,
)

MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})")


def ollama_name(host: str, namespace: str, model: str, tag: str) -> str:
    """The name ``ollama list`` shows for a manifest's place in the tree."""
    if host == DEFAULT_REGISTRY:
        base = model if namespace == DEFAULT_NAMESPACE else f"{namespace}/{model}"
    else:
        base = f"{host}/{namespace}/{model}"
    return f"{base}:{tag}"


def model_layer(manifest: Any) -> dict[str, Any] | None:
    """The manifest's GGUF layer, or None when it has none (or is not a manifest)."""
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        return None
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == MODEL_MEDIA_TYPE:
            return layer
    return None


def blob_path(store: Path, digest: Any) -> Path | None:
    """The blob file a digest names, or None when the digest is not a plain SHA-256."""
    if not isinstance(digest, str):
        return None
    match = _DIGEST.fullmatch(digest)
    return store / "blobs" / f"sha256-{match.group(1)}" if match else None


def _manifests(store: Path, result: Scan) -> list[tuple[Path, tuple[str, str, str, str]]]:
    """Every ``manifests/HOST/NAMESPACE/MODEL/TAG`` file, with its four names."""
    found = []
    levels: list[tuple[Path, tuple[str, ...]]] = [(store / "manifests", ())]
    for _ in range(3):  # HOST, NAMESPACE, MODEL: folders
        levels = [
            (Path(entry.path), (*names, entry.name))
            for folder, names in levels
            for entry in entries_of(folder, result)
            if not entry.name.startswith(".") and is_dir(entry)
        ]
    for folder, names in levels:
        for entry in entries_of(folder, result):  # TAG: files
            if entry.name.startswith(".") or not is_file(entry):
                continue
            host, namespace, model = names
            found.append((Path(entry.path), (host, namespace, model, entry.name)))
    return found


def scan(store: Path) -> Scan:
    """Every model in the store whose model layer is a GGUF blob that is there."""
    result = Scan()
    for manifest_path, names in _manifests(store, result):
        manifest = read_small_json(manifest_path, result)
        if manifest is None:
            continue
        layer = model_layer(manifest)
        if layer is None:
            result.skip(manifest_path, "has no GGUF model layer")
            continue
        blob = blob_path(store, layer.get("digest"))
        if blob is None:
            result.skip(manifest_path, "names its model layer with a digest that is not sha256")
            continue
        if not is_file(blob):
            result.skip(manifest_path, f"names a blob that is not there: {blob.name}")
            continue
        if not starts_with_gguf_magic(blob):
            result.skip(manifest_path, "names a model layer that is not a GGUF file")
            continue
        name = ollama_name(*names)
        found = Found(name, blob, {"app": OLLAMA, "ollama_name": name, "digest": blob.name})
        if not result.add(found):
            result.skip(store, "holds more models than slmdesk lists from one folder")
            break
    return result
