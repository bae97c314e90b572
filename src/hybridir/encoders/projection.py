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

Example::

    from hybridir.encoders.projection import debias
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

PROJECTION_FILE, PROJECTION_INFO = "language_projection.npz", "language_projection.json"
#: sentences a language the subspace's means are taken over (fixed before any run, for cost)
PER_LANGUAGE = 100
#: the default rank and recentring: the choice made on dev data (reports/projection_choice.md)
DEFAULT_RANK, DEFAULT_RECENTRE = 32, False


@dataclass(frozen=True)
class Projection:
    """An orthonormal basis (``dim`` x ``rank``) of the language subspace of one model (``fingerprint``)."""

    basis: np.ndarray
    fingerprint: str
    recentre: bool
    languages: tuple[str, ...]
    source: str = "ntrex"

    @property
    def dim(self) -> int:
        return int(self.basis.shape[0])

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def apply(self, vecs: np.ndarray, normalize: bool = True) -> np.ndarray:
        """``vecs`` with the subspace removed (and renormalised): what the saved Dense + Normalize modules do."""
        v = np.asarray(vecs, dtype=np.float32)
        out = v - (v @ self.basis) @ self.basis.T
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def matrix(self) -> np.ndarray:
        """``I - V V^T`` (``dim`` x ``dim``, symmetric): the Dense layer's weight."""
        return (np.eye(self.dim) - self.basis.astype(np.float64) @ self.basis.T.astype(np.float64)).astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "dim": self.dim, "rank": self.rank, "recentre": self.recentre,
                "languages": list(self.languages), "source": self.source}  # fmt: skip

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
        return cls(basis, str(info["fingerprint"]), bool(info["recentre"]), tuple(info.get("languages", ())),
                   str(info.get("source", "ntrex")))  # fmt: skip


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


def projection_of(enc: Any, rank: int, recentre: bool, languages: list[str] | None = None,
                  data_dir: str | os.PathLike | None = None, n: int = PER_LANGUAGE) -> Projection:  # fmt: skip
    """The projection of ``enc``'s model (an :class:`~.encoding.Encoder`, whose plain path encodes the means) from
    ``n`` NTREX-128 sentences of each of ``languages`` (default: every NTREX-128 language)."""
    from .centering import Centering

    if languages is None:
        from ..data.training.parallel import ntrex_files

        languages = sorted(ntrex_files(data_dir))
    centering = Centering("center", source="ntrex", data_dir=data_dir, n=n)
    centering.ensure(languages, enc.plain, enc.fingerprint, enc._dim() or 0, enc.path)
    if centering.missing:
        raise ConfigError(f"no NTREX-128 text for {', '.join(sorted(centering.missing))}: name NTREX languages only")
    assert centering.means is not None
    basis = subspace(centering.means, rank, recentre)
    return Projection(basis, enc.fingerprint, recentre, tuple(centering.means.languages))


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
    dim = model.get_sentence_embedding_dimension()
    if dim != projection.dim:
        raise ModelError(f"language projection of dimension {projection.dim}, the model has {dim}")
    dense = dense_cls(dim, dim, bias=False, activation_function=torch.nn.Identity(),
                      init_weight=torch.from_numpy(projection.matrix()))  # fmt: skip
    model.append(dense.to(model.device))
    model.append(norm_cls())
    return model


def debias(model_ref: str | os.PathLike, out: Path, rank: int = DEFAULT_RANK, recentre: bool = DEFAULT_RECENTRE,
           languages: list[str] | None = None, data_dir: str | os.PathLike | None = None,
           projection: str | os.PathLike | None = None, show_progress: bool = True) -> Projection:  # fmt: skip
    """Write ``model_ref`` with its language-neutral projection to ``out`` (atomically: nothing half-written).
    ``projection``: a saved one to reuse (checked against this model) instead of computing it."""
    from ..infra.files import atomic_dir
    from .encoding import Encoder
    from .models import load_encoder

    check_rank(rank)
    model = load_encoder(str(model_ref), device="cpu")
    enc = Encoder(model, show_progress=show_progress)
    if projection is not None:
        proj = Projection.load(projection, enc.fingerprint, enc._dim())
    else:
        check_rank(rank, enc._dim())
        proj = projection_of(enc, rank, recentre, languages, data_dir)
    with_projection(model, proj)
    with atomic_dir(out) as tmp:
        model.save(str(tmp))
        _portable_modules(Path(tmp) / "modules.json")
        proj.save(tmp)
    return proj


def _portable_modules(path: Path) -> None:
    """modules.json with each module's type written ``sentence_transformers.models.<Class>``, the name every
    sentence-transformers release from 2 to 6 loads (6 writes its new internal paths, which 5 cannot import)."""
    from ..infra.files import atomic_write_text

    mods = json.loads(path.read_text(encoding="utf-8"))
    for m in mods:
        if m["type"].startswith("sentence_transformers."):
            m["type"] = "sentence_transformers.models." + m["type"].rsplit(".", 1)[1]
    atomic_write_text(path, json.dumps(mods, indent=2) + "\n")
