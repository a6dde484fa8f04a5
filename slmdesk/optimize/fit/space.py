"""The candidates of a make-it-fit run: type × importance matrix × embedding type × vocabulary ×
pruned blocks, and each one's size predicted from the tensor table without building it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from slmdesk.models.gguf_info import GGUFInfo

# Types searched, best first. All can be made with or without an importance matrix.
FIT_TYPES: tuple[str, ...] = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K")
# Types below this quality gain from an importance matrix; Q8_0 and Q6_K barely do.
IMATRIX_TYPES = frozenset({"Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K"})
# Token-embedding types tried (None = llama.cpp's own choice for the type). Small models hold
# most of their bytes there; 32-value blocks fit any row width that is a multiple of 32.
EMBEDDING_TYPES: tuple[str | None, ...] = (None, "Q8_0", "Q5_0", "IQ4_NL", "Q4_0")
EMBEDDING_TENSORS = ("token_embd.weight", "output.weight")


@dataclass(frozen=True)
class Candidate:
    """One way to build the model."""

    type: str
    imatrix: bool = False
    embedding_type: str | None = None
    vocabulary: str | None = None  # a language set; None keeps the whole vocabulary
    pruned_blocks: tuple[int, ...] = ()

    def key(self) -> str:
        """A stable identifier, also the file stem while it is built."""
        parts = [self.type, "imat" if self.imatrix else "plain"]
        parts.append(f"emb-{self.embedding_type}" if self.embedding_type else "emb-auto")
        if self.vocabulary:
            parts.append("vocab-" + "".join(c if c.isalnum() else "_" for c in self.vocabulary))
        if self.pruned_blocks:
            parts.append("pruned-" + "_".join(str(b) for b in self.pruned_blocks))
        return "-".join(parts)

    def label(self) -> str:
        """How people read it: "IQ4_XS with importance matrix, embedding Q5_0"."""
        text = self.type + (" with importance matrix" if self.imatrix else "")
        if self.embedding_type:
            text += f", embedding {self.embedding_type}"
        if self.vocabulary:
            text += f", {self.vocabulary} vocabulary"
        if self.pruned_blocks:
            blocks = ", ".join(str(b) for b in self.pruned_blocks)
            text += f", block{'s' if len(self.pruned_blocks) > 1 else ''} {blocks} removed"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``front`` entry's choice fields)."""
        data = asdict(self)
        data["pruned_blocks"] = list(self.pruned_blocks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        """The inverse of `as_dict` (extra keys ignored)."""
        return cls(
            str(data["type"]),
            bool(data.get("imatrix")),
            data.get("embedding_type"),
            data.get("vocabulary"),
            tuple(int(b) for b in data.get("pruned_blocks") or ()),
        )


# Explicit embedding types, best first (measured on Gemma 3 270M: KLD rises down this list).
EMBEDDING_ORDER: tuple[str, ...] = ("Q8_0", "Q5_0", "IQ4_NL", "Q4_0")


def no_better(a: Candidate, b: Candidate) -> bool:
    """Whether ``a`` cannot be closer to the original than ``b``: no better in any choice.

    Why: each choice alone (a better type, an importance matrix, a larger embedding type) never
    makes a model worse, so a candidate that loses to ``b`` in every choice is expected to
    measure no better. llama.cpp's own embedding choice depends on the type, so it is compared
    only with itself; vocabularies and pruned blocks only with the same.
    """
    if a.vocabulary != b.vocabulary or a.pruned_blocks != b.pruned_blocks:
        return False
    if (a.embedding_type is None) != (b.embedding_type is None):
        return False
    if a.embedding_type is not None and b.embedding_type is not None:
        order = {name: i for i, name in enumerate(EMBEDDING_ORDER)}
        if order.get(a.embedding_type, 99) < order.get(b.embedding_type, 99):
            return False
    rank = {name: i for i, name in enumerate(FIT_TYPES)}
    if rank.get(a.type, 99) < rank.get(b.type, 99):
        return False
    return not (a.imatrix and not b.imatrix)


def embedding_choices(
    info: GGUFInfo, wanted: Sequence[str | None] = EMBEDDING_TYPES
) -> list[str | None]:
    """The embedding types whose blocks divide the embedding's rows (llama.cpp aborts otherwise)."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    rows = [t.shape[0] for t in info.tensors if t.name in EMBEDDING_TENSORS and t.shape]
    out: list[str | None] = []
    for name in wanted:
        if name is None:
            out.append(None)
            continue
        block = GGML_QUANT_SIZES[GGMLQuantizationType[name]][0]
        if all(r % block == 0 for r in rows):
            out.append(name)
    return out


def candidate_space(
    info: GGUFInfo,
    types: Sequence[str] = FIT_TYPES,
    vocabularies: Sequence[str | None] = (None,),
    pruned: Sequence[tuple[int, ...]] = ((),),
    with_imatrix: bool = True,
    embeddings: Sequence[str | None] = EMBEDDING_TYPES,
) -> list[Candidate]:
    """Every combination worth predicting. Plain (no importance matrix) variants are kept only
    with llama.cpp's own embedding choice: they are the baselines people download."""
    out: list[Candidate] = []
    choices = embedding_choices(info, embeddings)
    for vocab in vocabularies:
        for blocks in pruned:
            for qtype in types:
                out.append(Candidate(qtype, False, None, vocab, tuple(blocks)))
                if not with_imatrix or qtype not in IMATRIX_TYPES:
                    continue
                for embedding in choices:
                    out.append(Candidate(qtype, True, embedding, vocab, tuple(blocks)))
    return out


def predict_size(
    info: GGUFInfo,
    tensor_types: dict[str, str],
    candidate: Candidate,
) -> int:
    """The file size of ``candidate`` from ``info``'s tensor table and the types llama.cpp would
    choose for ``candidate.type`` (a dry run), with the embedding type applied on top."""
    from slmdesk.optimize.pipeline import predicted_size

    types = dict(tensor_types)
    if candidate.embedding_type:
        for name in EMBEDDING_TENSORS:
            types[name] = candidate.embedding_type
    return predicted_size(info, types, candidate.pruned_blocks)


def distinct_types(candidates: Iterable[Candidate]) -> list[str]:
    """The quantization types in ``candidates``, in first-seen order (one dry run each)."""
    seen: dict[str, None] = {}
    for c in candidates:
        seen.setdefault(c.type, None)
    return list(seen)
