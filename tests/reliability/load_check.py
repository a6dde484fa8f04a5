"""Child process: load model files with real llama.cpp (through slmdesk.llama) and generate.

``python -m tests.reliability.load_check LIST.json`` reads a JSON list of paths. For each it
prints ``start <i>``, then ``loaded <i>`` or ``refused <i> <error>`` — flushed, so that when a
file kills the process (llama.cpp aborting is the failure this looks for) the parent knows which
one it was.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.llama.engine import ChatEngine, SamplingSettings

    paths = json.loads(Path(argv[0]).read_text())
    for index, path in enumerate(paths):
        print(f"start {index}", flush=True)
        engine = ChatEngine()
        try:
            engine.load(path, context_length=256, n_threads=1)
            engine.generate(
                [{"role": "user", "content": "Hello there,\nwho are you?"}],
                SamplingSettings(max_tokens=3, seed=1, temperature=0.0),
            )
            print(f"loaded {index}", flush=True)
        except SlmdeskError as exc:
            print(f"refused {index} {type(exc).__name__}: {str(exc)[:200]}", flush=True)
        finally:
            engine.unload()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
