"""Per-group advantage normalisation: group mean, std per group or batch, clipping, zero-variance groups."""

from __future__ import annotations

import pytest
import torch

from unipic.rl.advantages import compute_advantages


def test_group_mean_and_group_std():
    r = torch.tensor([1.0, 0.0, 0.5, 0.5, 3.0, 1.0])
    keys = ["a", "a", "b", "b", "c", "c"]
    adv = compute_advantages(r, keys, std_mode="group", eps=0.0)
    torch.testing.assert_close(adv.values, torch.tensor([1.0, -1.0, 0.0, 0.0, 1.0, -1.0]))
    assert adv.keep.tolist() == [True, True, False, False, True, True]
    assert adv.n_groups == 3 and adv.n_zero_std_groups == 1
    assert adv.zero_std_ratio == pytest.approx(1 / 3)


def test_batch_std_divides_by_the_std_of_all_rewards():
    r = torch.tensor([1.0, 0.0, 3.0, 1.0])
    adv = compute_advantages(r, ["a", "a", "b", "b"], std_mode="batch", eps=0.0)
    std = r.std(unbiased=False)
    torch.testing.assert_close(adv.values, torch.tensor([0.5, -0.5, 1.0, -1.0]) / std)


def test_groups_are_keyed_not_positional():
    r = torch.tensor([1.0, 5.0, 0.0, 5.0])
    adv = compute_advantages(r, ["x", "y", "x", "y"], std_mode="group", eps=0.0)
    assert adv.values.tolist() == [1.0, 0.0, -1.0, 0.0]
    assert adv.keep.tolist() == [True, False, True, False]


def test_edit_group_key_is_instruction_and_source():
    r = torch.tensor([1.0, 0.0, 1.0, 0.0])
    keys = [("make it red", "src1"), ("make it red", "src1"), ("make it red", "src2"), ("make it red", "src2")]
    adv = compute_advantages(r, keys, std_mode="group", eps=0.0)
    assert adv.n_groups == 2 and adv.keep.all()


def test_clipping():
    r = torch.tensor([100.0] + [0.0] * 99)
    adv = compute_advantages(r, ["g"] * 100, std_mode="group", clip=5.0)
    assert float(adv.values.max()) == 5.0
    assert float(adv.values.min()) > -5.0


def test_all_equal_rewards_drop_everything_and_nan_is_refused():
    adv = compute_advantages(torch.ones(4), ["a", "a", "b", "b"])
    assert not adv.keep.any() and torch.equal(adv.values, torch.zeros(4)) and adv.zero_std_ratio == 1.0
    with pytest.raises(ValueError, match="non-finite"):
        compute_advantages(torch.tensor([1.0, float("nan")]), ["a", "a"])
    with pytest.raises(ValueError, match="group keys"):
        compute_advantages(torch.ones(3), ["a", "a"])
