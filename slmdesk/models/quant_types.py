"""The quantization types slmdesk offers, with what each costs in quality.

The codes are llama.cpp's ``llama_ftype`` values (``LLAMA_FTYPE_MOSTLY_*``). The expected quality
figures are llama.cpp's own published table: the ``QUANT_OPTIONS`` list of its ``llama-quantize``
tool (tools/quantize/quantize.cpp), which states the perplexity increase of each type measured on
Llama-3-8B (F16 and BF16 on Mistral-7B). They are relative guides, not predictions for a given
model: small models usually lose more per bit, which is why slmdesk also measures the result.

Types that need an importance matrix (IQ1_*, IQ2_*, IQ3_XXS, Q2_K_S) are made only by a run that
measures one (`quant_type(name, with_imatrix=True)`); without it a request gets a clear refusal
instead of llama.cpp's "requires an imatrix" abort. `imatrix_by_default` names the types an
optimize run measures one for unless told not to.

This table is the one source of quality figures in slmdesk: the optimize wizard offers types in
its order, and Discover ranks the Hub's files by it (`quality_rank`), so both agree on which of
two files is the better one.
"""

from __future__ import annotations

from dataclasses import dataclass

from slmdesk.common.errors import SlmdeskError


@dataclass(frozen=True)
class QuantType:
    """One llama.cpp quantization type as offered to the user."""

    name: str
    ftype: int
    bits_per_weight: float | None
    ppl_increase: float | None  # llama.cpp's published perplexity increase (Llama-3-8B)
    description: str
    needs_imatrix: bool = False
    run_only: bool = False  # llama.cpp runs such files, but slmdesk does not make them

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "ftype": self.ftype,
            "bits_per_weight": self.bits_per_weight,
            "ppl_increase": self.ppl_increase,
            "description": self.description,
            "needs_imatrix": self.needs_imatrix,
        }


# Best first: by the published perplexity increase where there is one; the types without a figure
# sit by their bits per weight among those with one. `quality_rank` is the position in this list.
# name, llama_ftype code, nominal bits per weight, +ppl (llama-quantize QUANT_OPTIONS), description
_TABLE: tuple[QuantType, ...] = (
    QuantType("F32", 0, 32.0, None, "full 32-bit floats (no loss, largest)"),
    QuantType("F16", 1, 16.0, 0.0020, "16-bit floats: practically lossless (Mistral-7B figure)"),
    QuantType("BF16", 32, 16.0, -0.0050, "bfloat16: practically lossless (Mistral-7B figure)"),
    QuantType("Q8_0", 7, 8.5, 0.0026, "8-bit: practically lossless"),
    QuantType("Q6_K", 18, 6.56, 0.0217, "6-bit K-quant: near lossless"),
    QuantType("Q5_K_M", 17, 5.69, 0.0569, "5-bit K-quant mix: very low loss"),
    QuantType("Q5_K_S", 16, 5.54, 0.1049, "5-bit K-quant: low loss"),
    QuantType("Q5_1", 9, 6.0, 0.1062, "legacy 5-bit with offset"),
    QuantType("Q5_0", 8, 5.5, 0.1316, "legacy 5-bit"),
    QuantType("Q4_K_M", 15, 4.89, 0.1754, "4-bit K-quant mix: the usual balance"),
    QuantType("Q4_K_S", 14, 4.58, 0.2689, "4-bit K-quant: smaller, a little more loss"),
    QuantType("IQ4_NL", 25, 4.5, None, "4.5-bit non-linear"),
    QuantType("IQ4_XS", 30, 4.25, None, "4.25-bit non-linear"),
    QuantType("MXFP4", 38, 4.25, None, "4-bit microscaling floats (MoE models)", run_only=True),
    QuantType("Q4_1", 3, 5.0, 0.4511, "legacy 4-bit with offset"),
    QuantType("Q4_0", 2, 4.5, 0.4685, "legacy 4-bit"),
    QuantType("Q3_K_L", 13, 4.27, 0.5562, "3-bit K-quant, large mix"),
    QuantType("Q3_K_M", 12, 3.91, 0.6569, "3-bit K-quant mix: noticeable loss"),
    QuantType("IQ3_M", 27, 3.66, None, "3.66-bit non-linear mix"),
    QuantType("IQ3_S", 26, 3.44, None, "3.44-bit non-linear"),
    QuantType("Q3_K_S", 11, 3.5, 1.6321, "3-bit K-quant: large loss"),
    QuantType("IQ3_XS", 22, 3.3, None, "3.3-bit non-linear", needs_imatrix=True),
    QuantType("IQ3_XXS", 23, 3.06, None, "3.06-bit non-linear", needs_imatrix=True),
    QuantType("Q2_K_S", 21, 2.96, 3.1836, "2-bit K-quant, small mix", needs_imatrix=True),
    QuantType("Q2_K", 10, 3.16, 3.5199, "2-bit K-quant: very large loss"),
    QuantType("IQ2_M", 29, 2.7, None, "2.7-bit non-linear", needs_imatrix=True),
    QuantType("IQ2_S", 28, 2.5, None, "2.5-bit non-linear", needs_imatrix=True),
    QuantType("IQ2_XS", 20, 2.31, None, "2.31-bit non-linear", needs_imatrix=True),
    QuantType("IQ2_XXS", 19, 2.06, None, "2.06-bit non-linear", needs_imatrix=True),
    QuantType("TQ2_0", 37, 2.06, None, "ternary, 2 bits (ternary models)", run_only=True),
    QuantType("IQ1_M", 31, 1.75, None, "1.75-bit non-linear", needs_imatrix=True),
    QuantType("TQ1_0", 36, 1.69, None, "ternary, 1.69 bits (ternary models)", run_only=True),
    QuantType("IQ1_S", 24, 1.56, None, "1.56-bit non-linear", needs_imatrix=True),
)

QUANT_TYPES: dict[str, QuantType] = {q.name: q for q in _TABLE}
# Aliases llama-quantize accepts.
_ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M", "FP16": "F16"}
# Names uploaders give files that llama-quantize has no type for: the base type with a few
# tensors (embeddings, output) kept at higher precision. Each ranks just above its base type.
UPLOADER_VARIANTS: dict[str, str] = {
    "Q2_K_L": "Q2_K",
    "Q3_K_XL": "Q3_K_L",
    "Q4_K_L": "Q4_K_M",
    "Q4_K_XL": "Q4_K_M",
    "Q5_K_L": "Q5_K_M",
    "Q5_K_XL": "Q5_K_M",
    "Q6_K_L": "Q6_K",
    "Q6_K_XL": "Q6_K",
    "Q8_K_XL": "Q8_0",
}
FULL_PRECISION = frozenset({"F32", "F16", "BF16"})
# Offered in the wizard: everything slmdesk can make without an importance matrix, best first.
OFFERED_TYPES: tuple[str, ...] = tuple(
    q.name for q in _TABLE if not q.needs_imatrix and not q.run_only and q.name != "F32"
)
_RANK: dict[str, int] = {q.name: len(_TABLE) - i for i, q in enumerate(_TABLE)}
# Every spelling a file name may use for a known type, for recognising it there.
KNOWN_NAMES: frozenset[str] = frozenset((*QUANT_TYPES, *_ALIASES, *UPLOADER_VARIANTS))


def canonical_name(name: str) -> str:
    """The table name for ``name``: upper case, llama-quantize aliases resolved."""
    key = name.strip().upper()
    return _ALIASES.get(key, key)


def quality_rank(name: str | None) -> float:
    """How close to the original model a quantization is: higher is better, 0 when unknown.

    The position in this module's table (best first); an uploader's variant such as ``Q4_K_L``
    ranks half a step above its base type. Only the order means something.
    """
    if not name:
        return 0.0
    key = canonical_name(name)
    if key in UPLOADER_VARIANTS:
        return _RANK[UPLOADER_VARIANTS[key]] + 0.5
    return float(_RANK.get(key, 0))


def is_full_precision(name: str | None) -> bool:
    """Whether ``name`` is an unquantized float type (F32, F16, BF16)."""
    return bool(name) and canonical_name(name or "") in FULL_PRECISION


def imatrix_by_default(q: QuantType) -> bool:
    """Whether an optimize run measures an importance matrix for ``q`` unless told not to.

    Why these: llama.cpp spends an importance matrix on the K-quants and the non-linear (IQ)
    types, and the loss it saves grows as the bits shrink (bench/imatrix.py: KLD about halved at
    Q2_K, Q3_K_S and IQ4_XS on Gemma 3 270M); at 5 bits and more the loss is already small.
    """
    if q.needs_imatrix or q.name.startswith("IQ"):
        return True
    return "_K" in q.name and (q.bits_per_weight or 16.0) < 5.0


def offered_types(with_imatrix: bool) -> tuple[str, ...]:
    """The types a run can make, best first: `OFFERED_TYPES`, plus those that need an
    importance matrix when the run measures one."""
    return tuple(
        q.name
        for q in _TABLE
        if not q.run_only and q.name != "F32" and (with_imatrix or not q.needs_imatrix)
    )


# Tensor types offered for the token embedding and the output tensor (ggml type names), best
# first. In small models these two hold most of the bytes; a type whose blocks do not divide a
# tensor's rows is refused for that model (`row_type_problem`).
TENSOR_TYPES: tuple[str, ...] = (
    "F16",
    "Q8_0",
    "Q6_K",
    "Q5_K",
    "Q5_1",
    "Q5_0",
    "Q4_K",
    "IQ4_NL",
    "IQ4_XS",
    "Q4_1",
    "Q4_0",
    "Q3_K",
    "Q2_K",
)


def tensor_type(name: str) -> str:
    """The ggml tensor type called ``name`` (case-insensitive) among `TENSOR_TYPES`.

    Raises:
        SlmdeskError: a name that is not offered for the embedding or output tensor.
    """
    key = name.strip().upper()
    if key not in TENSOR_TYPES:
        raise SlmdeskError(
            f"Unknown tensor type {name!r} for the embedding or output; choose one of: "
            f"{', '.join(TENSOR_TYPES)}."
        )
    return key


def quant_type(name: str, with_imatrix: bool = False) -> QuantType:
    """The type called ``name`` (case-insensitive, llama-quantize aliases accepted).

    ``with_imatrix``: the run measures an importance matrix, so the types that need one are
    allowed.

    Raises:
        SlmdeskError: unknown name, a type that needs an importance matrix (when there is none),
            or one slmdesk only runs.
    """
    found = QUANT_TYPES.get(canonical_name(name))
    if found is None:
        raise SlmdeskError(
            f"Unknown quantization type {name!r}; choose one of: {', '.join(OFFERED_TYPES)}."
        )
    if found.run_only:
        raise SlmdeskError(
            f"slmdesk can run {found.name} models but cannot make them; choose a type such as "
            "Q4_K_M instead."
        )
    if found.needs_imatrix and not with_imatrix:
        raise SlmdeskError(
            f"{found.name} needs an importance matrix: leave it on (drop --no-imatrix) or "
            "choose a type such as Q3_K_M, IQ4_XS or Q4_K_M instead."
        )
    return found
