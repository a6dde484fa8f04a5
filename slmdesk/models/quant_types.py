"""The quantization types slmdesk offers, with what each costs in quality.

The codes are llama.cpp's ``llama_ftype`` values (``LLAMA_FTYPE_MOSTLY_*``). The expected quality
figures are llama.cpp's own published table: the ``QUANT_OPTIONS`` list of its ``llama-quantize``
tool (tools/quantize/quantize.cpp), which states the perplexity increase of each type measured on
Llama-3-8B (F16 and BF16 on Mistral-7B). They are relative guides, not predictions for a given
model: small models usually lose more per bit, which is why slmdesk also measures the result.

Types that need an importance matrix (IQ1_*, IQ2_*, IQ3_XXS, Q2_K_S) are listed so a request
for them gets a clear refusal instead of llama.cpp's "requires an imatrix" abort.
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
    QuantType("Q4_1", 3, 5.0, 0.4511, "legacy 4-bit with offset"),
    QuantType("Q4_0", 2, 4.5, 0.4685, "legacy 4-bit"),
    QuantType("Q3_K_L", 13, 4.27, 0.5562, "3-bit K-quant, large mix"),
    QuantType("Q3_K_M", 12, 3.91, 0.6569, "3-bit K-quant mix: noticeable loss"),
    QuantType("IQ3_M", 27, 3.66, None, "3.66-bit non-linear mix"),
    QuantType("IQ3_S", 26, 3.44, None, "3.44-bit non-linear"),
    QuantType("Q3_K_S", 11, 3.5, 1.6321, "3-bit K-quant: large loss"),
    QuantType("Q2_K", 10, 3.16, 3.5199, "2-bit K-quant: very large loss"),
    QuantType("IQ3_XS", 22, 3.3, None, "3.3-bit non-linear", needs_imatrix=True),
    QuantType("IQ3_XXS", 23, 3.06, None, "3.06-bit non-linear", needs_imatrix=True),
    QuantType("Q2_K_S", 21, 2.96, 3.1836, "2-bit K-quant, small mix", needs_imatrix=True),
    QuantType("IQ2_M", 29, 2.7, None, "2.7-bit non-linear", needs_imatrix=True),
    QuantType("IQ2_S", 28, 2.5, None, "2.5-bit non-linear", needs_imatrix=True),
    QuantType("IQ2_XS", 20, 2.31, None, "2.31-bit non-linear", needs_imatrix=True),
    QuantType("IQ2_XXS", 19, 2.06, None, "2.06-bit non-linear", needs_imatrix=True),
    QuantType("IQ1_M", 31, 1.75, None, "1.75-bit non-linear", needs_imatrix=True),
    QuantType("IQ1_S", 24, 1.56, None, "1.56-bit non-linear", needs_imatrix=True),
)

QUANT_TYPES: dict[str, QuantType] = {q.name: q for q in _TABLE}
# Aliases llama-quantize accepts.
_ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M", "FP16": "F16"}
# Offered in the wizard: everything that works without an importance matrix, best first.
OFFERED_TYPES: tuple[str, ...] = tuple(
    q.name for q in _TABLE if not q.needs_imatrix and q.name != "F32"
)


def quant_type(name: str) -> QuantType:
    """The type called ``name`` (case-insensitive, llama-quantize aliases accepted).

    Raises:
        SlmdeskError: unknown name, or a type that needs an importance matrix.
    """
    key = name.strip().upper()
    key = _ALIASES.get(key, key)
    found = QUANT_TYPES.get(key)
    if found is None:
        raise SlmdeskError(
            f"Unknown quantization type {name!r}; choose one of: {', '.join(OFFERED_TYPES)}."
        )
    if found.needs_imatrix:
        raise SlmdeskError(
            f"{found.name} needs an importance matrix, which slmdesk does not compute yet; "
            "choose a type such as Q3_K_M, IQ4_XS or Q4_K_M instead."
        )
    return found


def type_for_ftype(code: int | None) -> QuantType | None:
    """The table entry for a ``general.file_type`` code, if known."""
    for q in _TABLE:
        if q.ftype == code:
            return q
    return None
