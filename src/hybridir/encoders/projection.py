"""The language-neutral projection: a fixed linear map that removes the language subspace, saved inside the model.

Per-language centering (:mod:`.centering`) needs every text's language at query time, and is lost the moment a
model leaves hybridir. Most of what it removes lies in a low-rank subspace: the span of the per-language mean
vectors (LSAR, Xie et al. 2022). Projecting it out needs no labels::

    x -> normalise((I - V V^T) x)

with ``V`` the top ``rank`` right-singular vectors of the stacked query and passage means of many languages
(NTREX-128: 100 sentences of each of its languages; ``recentre``: the means' own average removed first, so the
direction every language shares stays). The map is saved as a sentence-transformers ``Dense`` module (identity
activation, no bias) followed by ``Normalize`` in the model's ``modules.json``, so a plain
``SentenceTransformer(path)`` -- and every vector database, mteb run or LangChain pipeline behind it -- gets the
neutral vectors. ``language_projection.npz`` + ``.json`` beside the weights record the basis and what made it.

The subspace of a model is computed from its NTREX means by :mod:`.centering` (the ``proj`` scoring mode, on
cached vectors) and by :mod:`.debias` (``hybridir debias``, which writes the model). This module holds the map itself
and the sentence-transformers modules it becomes; it encodes nothing.

Example::

    from hybridir.encoders.debias import debias
    debias("e5-small", Path("runs/e5-neutral"))                 # hybridir debias --model e5-small --out ...
    SentenceTransformer("runs/e5-neutral").encode(["..."])      # neutral vectors, no hybridir import needed
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..infra.errors import ConfigError, ModelError
from .models import embedding_dim

PROJECTION_FILE, PROJECTION_INFO = "language_projection.npz", "language_projection.json"
#: sentences a language the subspace's means are taken over (fixed before any run, for cost)
SUBSPACE_PER_LANGUAGE = 100
#: the default rank, recentring and strength: the choice made on dev data (reports/projection_choice.md)
DEFAULT_RANK, DEFAULT_RECENTRE, DEFAULT_STRENGTH = 16, False, 0.5


@dataclass(frozen=True)
class Projection:
    """An orthonormal basis (``dim`` x ``rank``) of the language subspace of one model (``fingerprint``);
    ``strength`` s: the map is ``I - s V V^T`` (1: the orthogonal projection)."""

    basis: np.ndarray
    fingerprint: str
    recentre: bool
    languages: tuple[str, ...]
    source: str = "ntrex"
    strength: float = 1.0

    @property
    def dim(self) -> int:
        return int(self.basis.shape[0])

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def apply(self, vecs: np.ndarray, normalize: bool = True) -> np.ndarray:
        """``vecs`` with the subspace removed (and renormalised): what the saved Dense + Normalize modules do."""
        v = np.asarray(vecs, dtype=np.float32)
        out = v - self.strength * (v @ self.basis) @ self.basis.T
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def matrix(self) -> np.ndarray:
        """``I - s V V^T`` (``dim`` x ``dim``, symmetric): the Dense layer's weight."""
        v = self.basis.astype(np.float64)
        return (np.eye(self.dim) - self.strength * v @ v.T).astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "dim": self.dim, "rank": self.rank, "recentre": self.recentre,
                "strength": self.strength, "languages": list(self.languages), "source": self.source}  # fmt: skip

    def save(self, folder: str | os.PathLike) -> None:
        from ..infra.files import atomic_write_bytes, atomic_write_json

        buf = io.BytesIO()
        np.savez(buf, basis=self.basis.astype(np.float32))
        atomic_write_bytes(Path(folder) / PROJECTION_FILE, buf.getvalue())
        atomic_write_json(Path(folder) / PROJECTION_INFO, self.info())

    @classmethod
    def load(cls, path: str | os.PathLike, fingerprint: str | None = None, dim: int | None = None) -> Projection:
        """The projection in ``path`` (a folder, or its ``.npz``); ModelError (one line, naming the file) when it is
        unreadable, not orthonormal, or made for another model (fingerprint) or dimension."""
        path = Path(path)
        folder = path.parent if path.suffix == ".npz" else path
        npz, meta = folder / PROJECTION_FILE if path.suffix != ".npz" else path, folder / PROJECTION_INFO
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            with np.load(npz, allow_pickle=False) as z:
                basis = np.asarray(z["basis"], dtype=np.float32)
        except FileNotFoundError as e:
            raise ModelError(f"{e.filename}: language projection not found (make one: hybridir debias)") from e
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise ModelError(f"{npz}: corrupt language projection ({type(e).__name__}); make it again with "
                             "hybridir debias") from e  # fmt: skip
        if not isinstance(info, dict) or {"fingerprint", "dim", "rank", "recentre"} - set(info):
            raise ModelError(f"{meta}: not a language-projection record (needs fingerprint, dim, rank, recentre)")
        if basis.ndim != 2 or basis.shape != (info["dim"], info["rank"]) or not np.isfinite(basis).all():
            raise ModelError(f"{npz}: corrupt language projection (basis {basis.shape}, the record says "
                             f"{info['dim']} x {info['rank']})")  # fmt: skip
        if not np.allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-4):
            raise ModelError(f"{npz}: corrupt language projection (the basis is not orthonormal)")
        if fingerprint is not None and info["fingerprint"] != fingerprint:
            raise ModelError(f"{npz}: language projection of another model (fingerprint {info['fingerprint']}, "
                             f"this model is {fingerprint}); make one for it with hybridir debias")  # fmt: skip
        if dim is not None and info["dim"] != dim:
            raise ModelError(f"{npz}: language projection of dimension {info['dim']}, the model has {dim}")
        strength = info.get("strength", 1.0)
        if not isinstance(strength, int | float) or not 0 < strength <= 1:
            raise ModelError(f"{meta}: strength {strength!r} outside (0, 1]")
        return cls(basis, str(info["fingerprint"]), bool(info["recentre"]), tuple(info.get("languages", ())),
                   str(info.get("source", "ntrex")), float(strength))  # fmt: skip


def check_rank(rank: int, dim: int | None = None, n_means: int | None = None) -> int:
    """ConfigError unless ``1 <= rank < dim`` and ``rank <= n_means`` (the subspace is spanned by the means)."""
    if not isinstance(rank, int) or rank < 1:
        raise ConfigError(f"--rank {rank}: must be a whole number >= 1")
    if dim is not None and rank >= dim:
        raise ConfigError(f"--rank {rank}: must be below the model's dimension {dim}")
    if n_means is not None and rank > n_means:
        raise ConfigError(f"--rank {rank}: the means of the languages span at most {n_means} directions")
    return rank


def subspace(means: Any, rank: int, recentre: bool = False) -> np.ndarray:
    """The top ``rank`` right-singular vectors (``dim`` x ``rank``) of the stacked query and passage means of
    ``means`` (a :class:`~.centering.LanguageMeans`); ``recentre``: their average removed first."""
    stacked = np.stack([means.query[x] for x in means.languages] + [means.passage[x] for x in means.languages])
    stacked = stacked.astype(np.float64)
    if recentre:
        stacked -= stacked.mean(0, keepdims=True)
    check_rank(rank, stacked.shape[1], np.linalg.matrix_rank(stacked))
    _, _, vt = np.linalg.svd(stacked, full_matrices=False)
    return vt[:rank].T.astype(np.float32)


def _modules() -> tuple[type, type]:
    try:
        from sentence_transformers.sentence_transformer.modules import Dense, Normalize
    except ImportError:  # sentence-transformers 5
        from sentence_transformers.models import Dense, Normalize
    return Dense, Normalize


def with_projection(model: Any, projection: Projection) -> Any:
    """``model`` (a SentenceTransformer) with the projection appended as ``Dense`` (identity, no bias) and
    ``Normalize`` modules, in place; ModelError when it already ends in one (project once)."""
    import torch

    dense_cls, norm_cls = _modules()
    if any(isinstance(m, dense_cls) for m in model):
        raise ModelError("the model already has a Dense module (a projection applied twice would differ from the "
                         "one chosen): debias its starting model instead")  # fmt: skip
    dim = embedding_dim(model)
    if dim != projection.dim:
        raise ModelError(f"language projection of dimension {projection.dim}, the model has {dim}")
    dense = dense_cls(dim, dim, bias=False, activation_function=torch.nn.Identity(),
                      init_weight=torch.from_numpy(projection.matrix()))  # fmt: skip
    model.append(dense.to(model.device))
    model.append(norm_cls())
    return model


def portable_modules(path: Path) -> None:
    """modules.json with each module's type written ``sentence_transformers.models.<Class>``, the name every
    sentence-transformers release from 2 to 6 loads (6 writes its new internal paths, which 5 cannot import)."""
    from ..infra.files import atomic_write_text

    mods = json.loads(path.read_text(encoding="utf-8"))
    for m in mods:
        if m["type"].startswith("sentence_transformers."):
            m["type"] = "sentence_transformers.models." + m["type"].rsplit(".", 1)[1]
    atomic_write_text(path, json.dumps(mods, indent=2) + "\n")
