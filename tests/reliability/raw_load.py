"""Child process: load one GGUF file with llama-cpp-python directly, bypassing slmdesk's checks.

``python -m tests.reliability.raw_load FILE`` exits 0 if llama.cpp loaded the file and generated
a few tokens, 1 if it refused it with an error; a signal means llama.cpp crashed. Used to show
that each hostile file slmdesk refuses would otherwise crash the app (tests, RELIABILITY.md).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import llama_cpp

    try:
        llm = llama_cpp.Llama(model_path=argv[0], n_ctx=256, n_threads=1, verbose=False)
        tokens = llm.tokenize(b"Hello there,\nwho are you?")
        llm.eval(tokens)
        for _ in range(3):
            llm.eval([llm.sample(temp=0.0)])
    except Exception as exc:
        print(f"error: {str(exc)[:200]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
