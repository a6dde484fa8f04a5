"""Other apps' model folders, indexed in place (nothing is copied).

One module per layout (`hf_cache`, `lmstudio`, `ollama`, `gpt4all`, `jan`, `folder`), each turning
a folder into the models it holds (`base.Found`); `known_places` says where each app keeps its
folder on Linux, Windows and macOS; `config` keeps what the user turned off or added (in the
library index); `catalog` scans the places that are on; `reconcile` keeps the index's records of
these models in step with the folders (a folder that is gone makes its models unavailable, never
forgotten).
"""

from __future__ import annotations
