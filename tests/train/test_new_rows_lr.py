"""`finetune.new_rows_lr`: the new rows step as their own AdamW parameter group, everything else at `finetune.lr`."""

import copy

import pytest
import torch
from test_lora import EXAMPLES, extended

from gti.config import FinetuneConfig, TrainConfig, load_config
from gti.errors import GtiError
from gti.train.finetune import finetune
from gti.train.records import Checkpoints
from gti.train.rows import RowGroup

FLOAT32 = TrainConfig(precision="float32")
LR, ROWS_LR = 1e-3, 3e-2


def test_the_rows_step_exactly_as_an_adamw_parameter_group_of_their_own():
    """The loop's order (clip, move the rows' gradient, step, write back) against AdamW on two separate tensors."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(10, 4, generator=generator)
    ids = torch.tensor([2, 5, 7])
    others = torch.tensor([i for i in range(10) if i not in ids.tolist()])
    ours = torch.nn.Parameter(start.clone())
    rows = RowGroup([ours], ids, ROWS_LR)
    optimizer = torch.optim.AdamW([{"params": [ours], "peak_lr": LR},
                                   {"params": rows.prepare(torch.device("cpu")), "lr": ROWS_LR, "peak_lr": ROWS_LR}],
                                  lr=LR, weight_decay=0.0)
    ref_old, ref_new = torch.nn.Parameter(start[others].clone()), torch.nn.Parameter(start[ids].clone())
    reference = torch.optim.AdamW([{"params": [ref_old], "lr": LR}, {"params": [ref_new], "lr": ROWS_LR}], weight_decay=0.0)
    for step, factor in enumerate([0.25, 0.5, 1.0, 0.8, 0.6, 0.4]):  # a warmup, then a decay
        gradient = torch.randn(10, 4, generator=generator) * (step + 1)
        ours.grad, ref_old.grad, ref_new.grad = gradient.clone(), gradient[others].clone(), gradient[ids].clone()
        for group in optimizer.param_groups:
            group["lr"] = group["peak_lr"] * factor
        reference.param_groups[0]["lr"], reference.param_groups[1]["lr"] = LR * factor, ROWS_LR * factor
        rows.take_gradients()
        optimizer.step()
        rows.write_back()
        reference.step()
    assert torch.equal(ours.detach()[ids], ref_new.detach())
    assert torch.equal(ours.detach()[others], ref_old.detach())
    assert not torch.allclose(ref_new.detach(), start[ids], atol=1e-2)  # the rows did move, far


def one_step(tokenizer, tied: bool, mode: str, lr: float, new_rows_lr: float | None):
    """A tiny extended model after one fine-tuning step (no warmup: the step is at the peak rate)."""
    model, builder, new_ids = extended(tokenizer, tied)
    torch.manual_seed(0)  # LoRA's adapter initialization draws from the global generator
    config = FinetuneConfig(steps=1, lr=lr, new_rows_lr=new_rows_lr, batch_size=4, warmup_steps=0, mode=mode)
    finetune(model, builder, EXAMPLES, config, pad_id=0, options=FLOAT32)
    return dict(model.named_parameters()), new_ids


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("mode", ["full", "lora"])
def test_new_rows_step_at_their_rate_and_everything_else_at_the_fine_tuning_rate(tiny_tokenizer, tied, mode):
    """After one step from the same weights (same gradients), the new rows equal a run at `new_rows_lr` and
    every other parameter and row equals a run at `lr`."""
    both, new_ids = one_step(copy.deepcopy(tiny_tokenizer), tied, mode, LR, ROWS_LR)
    at_rows_lr, _ = one_step(copy.deepcopy(tiny_tokenizer), tied, mode, ROWS_LR, None)
    at_lr, _ = one_step(copy.deepcopy(tiny_tokenizer), tied, mode, LR, None)
    start = dict(extended(copy.deepcopy(tiny_tokenizer), tied)[0].named_parameters())
    embeddings = {"model.embed_tokens.weight", "lm_head.weight"} & set(both)
    assert ("lm_head.weight" in both) == (not tied)
    old = torch.ones(both["model.embed_tokens.weight"].shape[0], dtype=torch.bool)
    old[new_ids] = False
    for name, parameter in both.items():
        if name in embeddings:
            assert torch.equal(parameter[new_ids], at_rows_lr[name][new_ids]), name
            assert not torch.allclose(parameter[new_ids], at_lr[name][new_ids], rtol=0, atol=1e-4), name
            assert torch.equal(parameter[old], at_lr[name][old]), name
        else:
            assert torch.equal(parameter, at_lr[name]), name
    assert any(not torch.equal(start[name], parameter) for name, parameter in both.items() if name not in embeddings)


def test_a_run_with_its_own_rows_rate_resumes_exactly(tiny_tokenizer, tmp_path):
    """The rows' parameters and moments are in the checkpoint: a resumed run ends bit-identical."""
    config = FinetuneConfig(steps=6, lr=LR, new_rows_lr=ROWS_LR, batch_size=4, warmup_steps=2)
    options = TrainConfig(precision="float32", checkpoint_every=2)

    def save_then_crash(*args):
        save(*args)
        raise KeyboardInterrupt

    save = Checkpoints.save
    whole, builder, _ = extended(copy.deepcopy(tiny_tokenizer), tied=True)
    finetune(whole, builder, EXAMPLES, config, pad_id=0, options=options, workdir=tmp_path / "whole")
    resumed, builder, _ = extended(copy.deepcopy(tiny_tokenizer), tied=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Checkpoints, "save", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            finetune(resumed, builder, EXAMPLES, config, pad_id=0, options=options, workdir=tmp_path / "resumed")
    resumed, builder, _ = extended(copy.deepcopy(tiny_tokenizer), tied=True)
    result = finetune(resumed, builder, EXAMPLES, config, pad_id=0, options=options, workdir=tmp_path / "resumed")
    assert result.resumed_from == 2
    for (name, parameter), other in zip(whole.named_parameters(), resumed.parameters()):
        assert torch.equal(parameter, other), name


def test_new_rows_lr_equal_to_lr_changes_nothing(tiny_tokenizer):
    model, builder, _ = extended(copy.deepcopy(tiny_tokenizer), tied=True)
    twin = copy.deepcopy(model)
    config = FinetuneConfig(steps=3, lr=LR, batch_size=4, warmup_steps=1)
    finetune(model, builder, EXAMPLES, config, pad_id=0, options=FLOAT32)
    finetune(twin, builder, EXAMPLES, FinetuneConfig(**{**vars(config), "new_rows_lr": LR}), pad_id=0, options=FLOAT32)
    for (name, parameter), other in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(parameter, other), name


@pytest.mark.parametrize("value", ["0", "-1e-3"])
def test_new_rows_lr_must_be_positive(value):
    with pytest.raises(GtiError, match="finetune.new_rows_lr: must be positive"):
        load_config(None, [f"finetune.new_rows_lr={value}"])
    assert load_config(None, ["finetune.new_rows_lr=none"]).finetune.new_rows_lr is None
