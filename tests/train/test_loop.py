import torch

from gti.lm.prompts import Sample
from gti.train.loop import answer_loss, collate


def test_collate_left_pads_and_marks_answers():
    batch = collate([Sample([5, 6, 7], [8, 9]), Sample([5], [8])], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9], [0, 0, 0, 5, 8]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 0, 0, 1, 1]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4], [0, 0, 0, 0, 1]]
    # the last 3 logits predict tokens at positions 3, 4 and (nothing)
    assert batch.answer_mask.tolist() == [[True, True, False], [False, True, False]]
    assert batch.tokens == 7


def test_answer_loss_matches_a_plain_cross_entropy(tiny_model):
    samples = [Sample([5, 6, 7], [8, 9]), Sample([10, 11], [12])]
    loss = answer_loss(tiny_model, collate(samples, pad_id=0))
    total, count = 0.0, 0
    for sample in samples:
        ids = torch.tensor([sample.prompt + sample.answer])
        logits = tiny_model(ids).logits[0]
        for position in range(len(sample.prompt), ids.shape[1]):
            total += torch.nn.functional.cross_entropy(logits[position - 1], ids[0, position], reduction="sum")
            count += 1
    assert torch.allclose(loss, total / count, atol=1e-5)
