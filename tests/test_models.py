"""The model registry: names resolve offline, prompts are always present, errors are clear."""

from __future__ import annotations

import pytest

from hybridir.encoders.models import embedding_dim, fingerprint, load_encoder
from hybridir.infra.errors import ModelError


def test_unknown_name_lists_choices():
    with pytest.raises(ModelError, match="unknown model name 'e5-smal'.*e5-small"):
        load_encoder("e5-smal")


def test_hub_id_offline_gives_clear_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import: set it, no retries
    with pytest.raises(ModelError, match="could not load 'nobody/no-such-model'"):
        load_encoder("nobody/no-such-model")


def test_local_checkpoint_keeps_prompts(tiny_model_dir):
    model = load_encoder(str(tiny_model_dir))
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "
    assert model.prompts["document"] == "passage: "  # encode_document uses the passage prompt


def test_training_run_directory_means_its_final_model(tiny_model_dir, tmp_path):
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "run" / "final")
    model = load_encoder(str(tmp_path / "run"))
    assert model.prompts["query"] == "query: " and model.encode(["x"]).shape[1] == 32


def test_default_model_prompts_and_shape(e5_small):
    assert e5_small.prompts["query"] == "query: " and e5_small.prompts["passage"] == "passage: "
    emb = e5_small.encode(["hallo"], prompt_name="query")
    assert emb.shape == (1, 384)


def test_truncated_size_ladder():
    model = load_encoder("e5-small-l4")
    assert model[0].auto_model.config.num_hidden_layers == 4 and len(model[0].auto_model.encoder.layer) == 4
    assert model.encode(["x"]).shape == (1, 384)
    with pytest.raises(ModelError, match="cannot keep 40"):
        load_encoder("e5-small-l40")


def test_fingerprint_changes_with_weights(tiny_model_dir):
    import torch

    model = load_encoder(str(tiny_model_dir))
    before = fingerprint(model)
    assert fingerprint(load_encoder(str(tiny_model_dir))) == before
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert fingerprint(model) != before


def test_merge_weights_refuses_a_model_of_another_shape(tiny_model_dir):
    import torch

    from hybridir.encoders.models import merge_weights

    model = load_encoder(str(tiny_model_dir))
    name, p = next(iter(model.named_parameters()))
    assert merge_weights(model, {name: p.detach().clone()}, 0.5) == 0  # nothing differs, nothing changes
    with pytest.raises(ModelError, match="cannot merge"):
        merge_weights(model, {name: torch.zeros(3, 3)}, 0.5)


def test_embedding_dim_without_the_renamed_method_warning(tiny_model_dir):
    import warnings

    model = load_encoder(str(tiny_model_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old name warns on sentence-transformers 5.x: it must not be called there
        dim = embedding_dim(model)
    assert dim == model[0].auto_model.config.hidden_size

    class OldModel:  # sentence-transformers before the rename has the old name only
        def get_sentence_embedding_dimension(self) -> int:
            return 7

    assert embedding_dim(OldModel()) == 7
