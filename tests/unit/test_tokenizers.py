"""Offline tokenizers and SD3 text encoding."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from unipic.config.model import TextConfig
from unipic.models.text_encoders import build_text_stack, encode_prompt
from unipic.models.tokenizers import make_clip_tokenizer, make_t5_tokenizer, shapes_corpus

CORPUS = shapes_corpus()


@pytest.fixture(scope="module")
def clip_tok():
    return make_clip_tokenizer(CORPUS, vocab_size=700, model_max_length=32)


def test_clip_tokenizer_special_ids_and_round_trip(clip_tok):
    assert (clip_tok.bos_token_id, clip_tok.eos_token_id, clip_tok.pad_token_id) == (0, 1, 1)
    text = "A photo of a red cat, sitting on a blue chair! ünïcödé 猫"
    ids = clip_tok(text).input_ids
    assert ids[0] == 0 and ids[-1] == 1
    assert 1 not in ids[1:-1], "a byte fell back to <unk>"
    decoded = clip_tok.decode(ids, skip_special_tokens=True)
    assert decoded.replace(" ", "") == text.lower().replace(" ", "")  # CLIP splits punctuation into words


def test_learned_merges_shorten_captions(clip_tok):
    bytes_only = make_clip_tokenizer(None)
    caption = "two blue squares left of a green triangle"
    trained_len, bytes_len = len(clip_tok(caption).input_ids), len(bytes_only(caption).input_ids)
    assert trained_len < bytes_len / 2, (trained_len, bytes_len)
    assert len(bytes_only) == 514


def test_tokenizers_are_deterministic_and_save_load(tmp_path, clip_tok):
    again = make_clip_tokenizer(CORPUS, vocab_size=700, model_max_length=32)
    assert again.get_vocab() == clip_tok.get_vocab()
    t5 = make_t5_tokenizer(CORPUS, vocab_size=200, model_max_length=32)
    assert make_t5_tokenizer(CORPUS, vocab_size=200, model_max_length=32).get_vocab() == t5.get_vocab()
    for name, tok in (("clip", clip_tok), ("t5", t5)):
        tok.save_pretrained(tmp_path / name)
        loaded = AutoTokenizer.from_pretrained(tmp_path / name)
        assert type(loaded).__name__ == type(tok).__name__
        s = "make the red circle blue"
        assert loaded(s).input_ids == tok(s).input_ids
        assert loaded.model_max_length == 32


def test_t5_tokenizer_ends_with_eos():
    t5 = make_t5_tokenizer(CORPUS, vocab_size=200)
    ids = t5("a red circle").input_ids
    assert ids[-1] == t5.eos_token_id and t5.pad_token_id == 0
    assert t5.decode(ids, skip_special_tokens=True) == "a red circle"


@pytest.fixture(scope="module")
def stack():
    cfg = TextConfig(clip_max_length=16, t5_max_length=12)
    return cfg, build_text_stack(cfg, seed=0)


def test_clip_eos_token_id_matches_tokenizer(stack):
    _, s = stack
    for enc, tok in ((s.text_encoder, s.tokenizer), (s.text_encoder_2, s.tokenizer_2)):
        assert enc.config.eos_token_id == tok.eos_token_id
        assert not any(p.requires_grad for p in enc.parameters())
    assert s.text_encoder_3.config.d_model == 64


def test_encode_prompt_matches_stable_diffusion3_pipeline(stack):
    """Same components through diffusers' own SD3 encode_prompt: identical embeddings."""
    from diffusers import StableDiffusion3Pipeline

    cfg, s = stack
    prompts = ["a red circle", "two blue squares above a green triangle"]
    embeds, pooled = encode_prompt(s.as_dict(), prompts, max_sequence_length=12, joint_attention_dim=64)
    assert embeds.shape == (2, 16 + 12, 64) and pooled.shape == (2, 64)
    sd3 = StableDiffusion3Pipeline(transformer=None, scheduler=None, vae=None, **s.as_dict())
    ref_embeds, _, ref_pooled, _ = sd3.encode_prompt(
        prompts, prompts, prompts, do_classifier_free_guidance=False, max_sequence_length=12, device="cpu"
    )
    torch.testing.assert_close(embeds, ref_embeds)
    torch.testing.assert_close(pooled, ref_pooled)
    assert torch.count_nonzero(embeds[:, :16, 64:]) == 0


def test_encode_prompt_without_t5_uses_zeros(stack):
    _, s = stack
    parts = s.as_dict() | {"text_encoder_3": None, "tokenizer_3": None}
    embeds, _ = encode_prompt(parts, ["a red circle"], max_sequence_length=12, joint_attention_dim=64)
    assert torch.count_nonzero(embeds[:, 16:]) == 0
    assert torch.count_nonzero(embeds[:, :16]) > 0


def test_prompts_change_embeddings(stack):
    _, s = stack
    e, p = encode_prompt(s.as_dict(), ["a red circle", "a blue square", ""], max_sequence_length=12)
    assert not torch.allclose(e[0], e[1]) and not torch.allclose(p[0], p[1])
    assert not torch.allclose(p[0], p[2])


def test_shapesworld_texts_fit_the_tiny_presets_budget():
    """ci/smoke keep 16 CLIP and 16 T5 tokens; every ShapesWorld caption and instruction must fit."""
    from unipic.config import load_config
    from unipic.config.data import ShapesConfig
    from unipic.data.shapes import make_edit_sample, make_t2i_sample

    text_cfg = load_config("ci").model.text
    clip = make_clip_tokenizer(CORPUS, text_cfg.clip_vocab_size, text_cfg.clip_max_length)
    t5 = make_t5_tokenizer(CORPUS, text_cfg.t5_vocab_size, text_cfg.t5_max_length)
    texts = []
    for heldout in (False, True):
        cfg = ShapesConfig(heldout=heldout)
        texts += [make_t2i_sample(cfg, i).caption for i in range(120)]
        texts += [make_edit_sample(cfg, i).instruction for i in range(140)]
    assert max(len(clip(t).input_ids) for t in texts) <= text_cfg.clip_max_length
    assert max(len(t5(t).input_ids) for t in texts) <= text_cfg.t5_max_length
    assert all(t5.unk_token_id not in t5(t).input_ids for t in texts)
