"""Where each app keeps its models on Linux, Windows and macOS.

Each app has a list of candidate folders, most likely first; the first one that exists is the
app's place (or, when none exists, the first candidate, shown as "not found"). Environment
variables the apps themselves honour come first: ``HF_HUB_CACHE`` / ``HF_HOME`` (then
``XDG_CACHE_HOME``) for the Hugging Face cache, ``OLLAMA_MODELS`` for Ollama.

``SLMDESK_APP_FOLDERS_HOME`` replaces the home folder these places are looked for under (tests,
and a portable install that must not pick up the machine's apps); ``SLMDESK_APP_FOLDERS=off``
turns detection off altogether.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from slmdesk.models.library.sources.base import GPT4ALL, HF_CACHE, JAN, LMSTUDIO, OLLAMA

HOME_ENV = "SLMDESK_APP_FOLDERS_HOME"
SWITCH_ENV = "SLMDESK_APP_FOLDERS"
KNOWN_APPS = (HF_CACHE, LMSTUDIO, OLLAMA, GPT4ALL, JAN)


@dataclass(frozen=True)
class Place:
    """One app's folder: where it is and whether it exists now."""

    app: str
    path: Path
    found: bool


def _home(env: Mapping[str, str]) -> Path:
    override = env.get(HOME_ENV, "").strip()
    return Path(override).expanduser() if override else Path.home()


def _platform_dirs(env: Mapping[str, str], home: Path, system: str) -> tuple[Path, Path, Path]:
    """(roaming app data, local app data, XDG data) folders in the style of platformdirs."""
    overridden = bool(env.get(HOME_ENV, "").strip())
    if system == "win32":
        roaming = env.get("APPDATA") if not overridden else None
        local = env.get("LOCALAPPDATA") if not overridden else None
        return (
            Path(roaming) if roaming else home / "AppData" / "Roaming",
            Path(local) if local else home / "AppData" / "Local",
            home / "AppData" / "Local",
        )
    if system == "darwin":
        support = home / "Library" / "Application Support"
        return support, support, support
    xdg_data = env.get("XDG_DATA_HOME") if not overridden else None
    xdg_config = env.get("XDG_CONFIG_HOME") if not overridden else None
    data = Path(xdg_data) if xdg_data else home / ".local" / "share"
    config = Path(xdg_config) if xdg_config else home / ".config"
    return config, data, data


def candidates(
    app: str, env: Mapping[str, str] | None = None, system: str | None = None
) -> list[Path]:
    """The folders ``app`` may keep its models in on this system, most likely first."""
    env = os.environ if env is None else env
    system = system or sys.platform
    home = _home(env)
    roaming, local, data = _platform_dirs(env, home, system)
    if app == HF_CACHE:
        if env.get("HF_HUB_CACHE"):
            return [Path(env["HF_HUB_CACHE"]).expanduser()]
        if env.get("HF_HOME"):
            return [Path(env["HF_HOME"]).expanduser() / "hub"]
        xdg_cache = env.get("XDG_CACHE_HOME") if not env.get(HOME_ENV) else None
        cache = Path(xdg_cache) if xdg_cache else home / ".cache"
        return [cache / "huggingface" / "hub"]
    if app == OLLAMA:
        if env.get("OLLAMA_MODELS"):
            return [Path(env["OLLAMA_MODELS"]).expanduser()]
        places = [home / ".ollama" / "models"]
        if system.startswith("linux") and not env.get(HOME_ENV):
            places.append(Path("/usr/share/ollama/.ollama/models"))  # the systemd service's
        return places
    if app == LMSTUDIO:
        return [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    if app == GPT4ALL:
        return [local / "nomic.ai" / "GPT4All"]
    if app == JAN:
        return [roaming / "Jan" / "data", data / "Jan" / "data", home / "jan"]
    raise ValueError(f"unknown app {app!r}")


def detect(env: Mapping[str, str] | None = None, system: str | None = None) -> list[Place]:
    """Each known app's place (found or not); none when detection is switched off."""
    env = os.environ if env is None else env
    if env.get(SWITCH_ENV, "").strip().lower() in ("0", "off", "no", "false"):
        return []
    places = []
    for app in KNOWN_APPS:
        options = candidates(app, env, system)
        existing = next((p for p in options if p.is_dir()), None)
        places.append(Place(app, existing or options[0], existing is not None))
    return places
