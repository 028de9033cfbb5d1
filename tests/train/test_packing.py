"""`train.pack`: several samples per row, each attending only to itself: the same loss and gradient as padding."""

import torch

from gti.lm.prompts import Sample
from gti.train.batches import answer_loss, collate, collate_packed, pack_rows
from tiny_models import make_tiny_model

SAMPLES = [Sample([5, 6, 7, 8, 9, 10], [11, 12, 13]), Sample([5, 6], [14]), Sample([7, 8, 9], [15, 16]),
           Sample([5], [17, 18, 19, 20]), Sample([9, 9, 9, 9, 9, 9, 9, 9], [21])]


def test_rows_are_filled_first_fit_decreasing_and_hold_every_sample_once():
    lengths = [len(s.prompt) + len(s.answer) for s in SAMPLES]  # 9, 3, 5, 5, 9
    rows = pack_rows(lengths)
    assert sorted(i for row in rows for i in row) == list(range(len(SAMPLES)))
    assert all(sum(lengths[i] for i in row) <= max(lengths) for row in rows) and len(rows) == 4


def test_packed_and_padded_batches_give_the_same_loss_and_gradients():
    model = make_tiny_model(64).float()
    grads = []
    for make in (collate, collate_packed):
        model.zero_grad()
        batch = make(SAMPLES, 0)
        loss = answer_loss(model, batch, reduction="sum")
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (padded, padded_grads), (packed, packed_grads) = grads
    assert abs(padded - packed) < 1e-4 * abs(padded)
    for a, b in zip(padded_grads, packed_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    packed_batch = collate_packed(SAMPLES, 0)
    assert packed_batch.input_ids.shape[0] < len(SAMPLES)  # fewer rows
    assert packed_batch.tokens == collate(SAMPLES, 0).tokens == sum(len(s.prompt) + len(s.answer) for s in SAMPLES)
    assert int(packed_batch.answer_mask.sum()) == sum(len(s.answer) for s in SAMPLES)


def test_a_sample_does_not_see_the_one_packed_before_it():
    model = make_tiny_model(64).float().eval()
    alone = answer_loss(model, collate([SAMPLES[1]], 0), reduction="sum")
    # row: [pad] + SAMPLES[2] + SAMPLES[1] (3 + 5 <= 9 with SAMPLES[0]'s length as the width)
    together = collate_packed([SAMPLES[0], SAMPLES[2], SAMPLES[1]], 0)
    with torch.no_grad():
        both = answer_loss(model, together, reduction="sum")
        first = answer_loss(model, collate([SAMPLES[0]], 0), reduction="sum")
        second = answer_loss(model, collate([SAMPLES[2]], 0), reduction="sum")
    assert abs(float(both) - float(first + second + alone.detach())) < 1e-4
