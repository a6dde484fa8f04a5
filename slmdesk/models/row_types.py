"""Which type the token embedding and the output tensor get, and whether that type can hold them.

Why here, without llama.cpp: the size preview, the fit search and the optimize run refuse an
impossible choice before any work, with the same sentence the quantizer itself gives
(`slmdesk.llama.quantize`), where llama.cpp would abort the process.

Tied embeddings (no ``output.weight``, as in Gemma): the embedding is also the output, and
llama.cpp gives it the embedding type when one is chosen, else the output type (measured with
llama.cpp 0.3.36's dry run on Gemma 3 270M).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EMBEDDING = "token_embd.weight"
OUTPUT = "output.weight"


def chosen_types(
    tensor_names: Iterable[str], embedding_type: str | None, output_type: str | None
) -> dict[str, str]:
    """Tensor name -> the chosen ggml type name, for the tensors a choice applies to."""
    names = set(tensor_names)
    wanted: dict[str, str | None] = {EMBEDDING: embedding_type, OUTPUT: output_type}
    if OUTPUT not in names:
        wanted = {EMBEDDING: embedding_type if embedding_type is not None else output_type}
    return {name: kind.upper() for name, kind in wanted.items() if kind and name in names}


def block_size(type_name: str) -> int:
    """Values per block of a ggml type (1 for plain floats)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    return int(GGML_QUANT_SIZES[GGMLQuantizationType[type_name.upper()]][0])


def row_type_problem(
    shapes: Mapping[str, tuple[int, ...]], embedding_type: str | None, output_type: str | None
) -> str | None:
    """The sentence refusing a chosen type whose block does not divide its tensor's rows, or
    None when every choice fits. ``shapes``: tensor name -> shape (rows first, as in GGUF)."""
    for name, kind in chosen_types(shapes, embedding_type, output_type).items():
        block = block_size(kind)
        width = shapes[name][0]
        if width % block:
            return (
                f"{kind} cannot hold {name}: its rows of {width:,} values are not a multiple of "
                f"the type's {block}-value blocks; choose a type such as Q8_0 or IQ4_NL."
            )
    return None
