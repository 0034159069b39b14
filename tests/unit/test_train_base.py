"""The base Trainer on a toy regression: loop, schedule, EMA, metrics, checkpoints, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from unipic.config.train import TrainerConfig
from unipic.errors import ConfigError, IntegrityError
from unipic.training import StepOutput, Trainer
from unipic.training.optim import WarmupDecay


class ToyData:
    """Batch i is a pure function of (seed, i): the position is the whole state."""

    def __init__(self, batch_size: int, seed: int = 0):
        self.batch_size, self.seed, self.index = batch_size, seed, 0

    def __next__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.index)
        self.index += 1
        x = torch.randn(self.batch_size, 8, generator=g)
        return x, x @ torch.linspace(-1, 1, 8)[:, None]

    def state_dict(self):
        return {"index": self.index}

    def load_state_dict(self, state):
        self.index = state["index"]


class ToyTrainer(Trainer):
    section = "toy"

    def forward_backward_step(self, batch):
        x, y = batch
        with self.autocast():
            pred = self.model(x)
        noise = torch.randn(y.shape, generator=self.generator) * 0.01
        loss = nn.functional.mse_loss(pred.float(), y + noise)
        self.backward(loss)
        return StepOutput(loss=loss.detach(), tokens=x.shape[0] * 8, samples=x.shape[0])


def make(tmp: Path, **kw) -> ToyTrainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 1))
    cfg = TrainerConfig(**{"steps": 12, "batch_size": 16, "lr": 1e-2, "warmup_steps": 2, "log_every": 1,
                           "ema_decay": 0.9, "precision": "fp32", **kw})
    return ToyTrainer(cfg, model, ToyData(cfg.batch_size), tmp)


def test_loss_falls_and_metrics_are_written(tmp_path):
    result = make(tmp_path, steps=30).train()
    losses = [result.losses[s] for s in sorted(result.losses)]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 31))
    for key in ("loss", "lr", "grad_norm", "img_tok_per_s", "step_time_s", "rss_gb", "time_forward_backward_s",
                "time_optimizer_s"):
        assert records[-1][key] is not None and records[-1][key] >= 0, key
    assert records[0]["lr"] == pytest.approx(0.5e-2)  # warm-up: step 1 of 2
    assert records[-1]["lr"] < records[5]["lr"]        # cosine decays
    assert result.curve_png and result.curve_png.stat().st_size > 1000


def test_exact_resume_reproduces_the_loss_trajectory(tmp_path):
    full = make(tmp_path / "full", checkpoint_every=5).train()
    first = make(tmp_path / "part", checkpoint_every=5).train(stop_at=7)
    assert first.last_step == 7 and set(first.losses) == set(range(1, 8))
    res = make(tmp_path / "part", checkpoint_every=5).train(resume=True)
    assert res.first_step == 7 and set(res.losses) == set(range(8, 13))
    for step in range(1, 13):
        got = first.losses.get(step, res.losses.get(step))
        assert got == pytest.approx(full.losses[step], rel=1e-6, abs=1e-9), step
    a = torch.load(tmp_path / "full" / "checkpoints" / "step-00000012" / "trainer_state.rank0.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "checkpoints" / "step-00000012" / "trainer_state.rank0.pt", weights_only=False)
    assert a["data"] == b["data"]
    recs = [json.loads(x)["step"] for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert recs == list(range(1, 13))

    explicit = make(tmp_path / "part", checkpoint_every=5)
    again = explicit.train(resume=tmp_path / "part" / "checkpoints" / "step-00000012")
    assert again.first_step == 12 and again.losses == {}


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    res = make(tmp_path, steps=3).train(resume=True)
    assert res.first_step == 0 and res.last_step == 3


def test_keep_last_and_corrupt_checkpoint_is_refused(tmp_path):
    t = make(tmp_path, checkpoint_every=3, keep_last=2)
    t.train()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-00000009", "step-00000012"]
    target = tmp_path / "checkpoints" / "step-00000012" / "model.safetensors"
    blob = bytearray(target.read_bytes())
    blob[-1] ^= 0xFF
    target.write_bytes(bytes(blob))
    fresh = make(tmp_path, checkpoint_every=3, keep_last=2)
    with pytest.raises(IntegrityError, match="model.safetensors is corrupt"):
        fresh.train(resume=True)
    assert fresh.step == 0


def test_schedule_shapes():
    f = WarmupDecay(total_steps=100, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(55) == pytest.approx(0.55, abs=1e-6)
    assert WarmupDecay(100, 0, "constant", 0.0)(50) == 1.0


def test_wsd_holds_the_peak_then_decays_over_the_last_fraction():
    f = WarmupDecay(total_steps=100, warmup_steps=10, schedule="wsd", min_lr_ratio=0.1, decay_fraction=0.2)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == f(50) == f(80) == 1.0
    assert f(90) == pytest.approx(0.55) and f(100) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(80, 100))
    with pytest.raises(ValueError, match="decay_fraction"):
        TrainerConfig(schedule="wsd", decay_fraction=0.0)


@pytest.mark.parametrize("native,dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_precision_autocasts_only_where_bf16_is_native(tmp_path, monkeypatch, native, dtype):
    monkeypatch.setattr("unipic.training.precision.native_bf16", lambda device: native)
    trainer = make(tmp_path, precision="auto")
    with trainer.autocast():
        out = trainer.model(torch.randn(2, 8))
    assert trainer.precision == ("bf16" if native else "fp32") and out.dtype == dtype


def test_ema_tracks_slowly_and_memory_refusal(tmp_path):
    t = make(tmp_path, ema_decay=0.99, steps=3)
    t.train()
    live = dict(t.model.named_parameters())
    diff = max((t.ema.shadow[n] - live[n].detach()).abs().max().item() for n in t.ema.shadow)
    assert diff > 0

    class Hungry(ToyTrainer):
        def estimate_memory_bytes(self, model):
            return 10 * 2**30

    with pytest.raises(ConfigError, match="toy.batch_size"):
        Hungry(TrainerConfig(max_memory_gb=1.0), nn.Linear(8, 1), ToyData(4), tmp_path / "h")


def test_gradient_checkpointing_needs_model_support(tmp_path):
    with pytest.raises(ConfigError, match="toy.gradient_checkpointing"):
        make(tmp_path, gradient_checkpointing=True)


def test_plain_trainer_refuses_a_multi_process_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="unsynchronised"):
        make(tmp_path)


def test_ema_warmup_ramps_the_decay():
    from unipic.training.ema import EMA

    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema, plain = EMA(model, 0.995, warmup=True), EMA(model, 0.995, warmup=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    plain.update(model)
    assert ema.shadow["weight"][0, 0].item() == pytest.approx(0.9)  # decay min(0.995, 1/10)
    assert plain.shadow["weight"][0, 0].item() == pytest.approx(0.005)
    for _ in range(1999):
        ema.update(model)
    assert ema.current_decay() == 0.995 and ema.num_updates == 2000  # (1+n)/(10+n) passes 0.995 at n = 1791


def test_resume_restores_the_ema_update_count(tmp_path):
    make(tmp_path, checkpoint_every=3).train(stop_at=3)
    again = make(tmp_path, checkpoint_every=3)
    again.resume()
    assert again.ema.num_updates == 3
