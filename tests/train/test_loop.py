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


# --- the loop's options: accumulation, length grouping, checkpoints, logs, validation ---

import json  # noqa: E402
import random  # noqa: E402

import pytest  # noqa: E402

from gti.config import TrainConfig  # noqa: E402
from gti.errors import GtiError  # noqa: E402
from gti.train.loop import epoch_batches, train  # noqa: E402
from tiny_models import make_tiny_model  # noqa: E402

VOCAB = 80


def _samples(n: int = 24, seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    return [
        Sample([rng.randrange(4, VOCAB) for _ in range(rng.randrange(2, 12))], [rng.randrange(4, VOCAB) for _ in range(rng.randrange(1, 4))])
        for _ in range(n)
    ]


def _run(steps=6, options=None, workdir=None, validate=None, on_step=None, seed=0):
    model = make_tiny_model(VOCAB)
    result = train(
        model, _samples(), list(model.parameters()), steps=steps, lr=1e-2, batch_size=8, pad_id=0, seed=seed,
        warmup_steps=2, options=options or TrainConfig(precision="float32"), workdir=workdir, validate=validate,
        on_step=on_step,
    )
    return model, result


def test_gradient_accumulation_gives_the_same_training():
    plain, plain_result = _run(options=TrainConfig(precision="float32"))
    split, split_result = _run(options=TrainConfig(precision="float32", grad_accum=4))
    assert split_result.losses == pytest.approx(plain_result.losses, abs=1e-5)
    for a, b in zip(plain.parameters(), split.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_length_grouping_covers_each_sample_once_and_pads_less():
    lengths = [random.Random(i).randrange(1, 200) for i in range(1000)]
    grouped = epoch_batches(lengths, 10, seed=3, epoch=0, group_by_length=True)
    plain = epoch_batches(lengths, 10, seed=3, epoch=0, group_by_length=False)
    for batches in (grouped, plain):
        flat = [i for batch in batches for i in batch]
        assert len(flat) == len(set(flat)) == 1000 and all(len(b) == 10 for b in batches)

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(grouped) < padding(plain) / 5
    assert epoch_batches(lengths, 10, 3, 1, True) != grouped  # every epoch draws anew
    assert epoch_batches(lengths, 10, 3, 0, True) == grouped  # ... deterministically


def test_a_run_resumed_from_its_checkpoint_ends_exactly_like_an_uninterrupted_one(tmp_path):
    options = TrainConfig(precision="float32", checkpoint_every=3)
    whole, whole_result = _run(steps=8, options=options, workdir=tmp_path / "whole")

    def crash(step, loss):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(steps=8, options=options, workdir=tmp_path / "resumed", on_step=crash)
    assert [p.name for p in (tmp_path / "resumed").glob("step-*")] == ["step-000006"]
    resumed, resumed_result = _run(steps=8, options=options, workdir=tmp_path / "resumed")
    assert resumed_result.resumed_from == 6
    assert resumed_result.losses == whole_result.losses
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    log = [json.loads(line) for line in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(8))  # the lines logged after the checkpoint were replaced


def test_a_broken_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "step-000003").mkdir()
    (tmp_path / "step-000003" / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(GtiError, match="step-000003: unreadable checkpoint"):
        _run(options=TrainConfig(precision="float32", checkpoint_every=3), workdir=tmp_path)


def test_early_stopping_keeps_the_best_validated_weights():
    snapshots, scores = {}, iter([0.5, 0.7, 0.6, 0.4, 0.9, 0.9])

    def validate(model):
        snapshots[len(snapshots) + 1] = [p.detach().clone() for p in model.parameters()]
        return {"recall@10": next(scores), "loss": 1.0}

    model, result = _run(steps=12, options=TrainConfig(precision="float32", validate_every=2, patience=2), validate=validate)
    assert [v["step"] for v in result.validations] == [2, 4, 6, 8]
    assert result.stopped_early and result.best_step == 4 and len(result.losses) == 8
    for kept, saved in zip(model.parameters(), snapshots[2]):
        assert torch.equal(kept, saved)


def test_a_seconds_cap_stops_training_and_validates_where_it_stops(monkeypatch):
    import gti.train.loop as loop

    clock = iter(range(0, 10_000, 10))  # every reading of the clock is 10 s later
    monkeypatch.setattr(loop.time, "perf_counter", lambda: float(next(clock)))
    options = TrainConfig(precision="float32", validate_every=100, max_seconds=25)
    _, result = _run(steps=12, options=options, validate=lambda model: {"recall@10": 0.5, "loss": 1.0})
    assert result.stopped_early and len(result.losses) < 12 and result.seconds >= 25
    assert [v["step"] for v in result.validations] == [len(result.losses)]  # the stop point was validated
    assert result.validations[0]["train_seconds"] >= 25 and result.validations[0]["train_tokens"] == result.tokens


def test_an_unknown_monitor_is_named():
    with pytest.raises(GtiError, match="'ndcg@5' is not a validation measure"):
        _run(options=TrainConfig(precision="float32", validate_every=2, monitor="ndcg@5"), validate=lambda m: {"loss": 1.0})


def test_a_batch_too_small_to_split_is_refused():
    with pytest.raises(GtiError, match="cannot be split"):
        _run(options=TrainConfig(precision="float32", grad_accum=16))


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_training_computes_in_the_precision_it_reports(precision):
    """A linear layer's output during the training steps is bfloat16 under bf16 autocast, float32 otherwise."""
    model = make_tiny_model(VOCAB)
    seen = []

    def record(module, inputs, output):
        if module.training:
            seen.append(output.dtype)

    model.model.layers[0].mlp.down_proj.register_forward_hook(record)
    result = train(
        model, _samples(), list(model.parameters()), steps=3, lr=1e-2, batch_size=8, pad_id=0, seed=0,
        options=TrainConfig(precision=precision),
    )
    assert result.precision == precision and len(result.losses) == 3 and all(loss > 0 for loss in result.losses)
    assert len(seen) == 3 and set(seen) == {getattr(torch, precision)}
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())  # master weights stay float32


def test_tensorboard_event_files_are_written(tmp_path):
    pytest.importorskip("tensorboard")
    _run(steps=3, options=TrainConfig(precision="float32", tensorboard=True), workdir=tmp_path)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len((tmp_path / "train_log.jsonl").read_text().splitlines()) == 3


def test_a_step_that_cannot_fit_is_refused_before_training(monkeypatch):
    import gti.train.memory as memory

    monkeypatch.setattr(memory, "free_bytes", lambda device: 10_000)  # 10 kB free
    with pytest.raises(GtiError, match=r"a step needs about .* GiB .* free on cpu; lower the batch size, raise train.grad_accum"):
        _run()


def test_the_memory_estimate_counts_what_trains_and_the_activations():
    from gti.train.memory import step_bytes

    model = make_tiny_model(VOCAB)
    everything = step_bytes(model, list(model.parameters()), rows=4, tokens=10, precision="float32")
    embeddings_only = step_bytes(model, [model.get_input_embeddings().weight], rows=4, tokens=10, precision="float32")
    n = sum(p.numel() for p in model.parameters())
    assert everything["gradients"] == 4 * n and everything["optimizer"] == 8 * n
    assert embeddings_only["optimizer"] == 8 * model.get_input_embeddings().weight.numel()
    half = step_bytes(model, [], rows=4, tokens=10, precision="bfloat16")["activations"]
    assert everything["activations"] == 2 * half > 0
    assert step_bytes(model, [], rows=8, tokens=10, precision="bfloat16")["activations"] == 2 * half


def test_planned_tokens_equal_the_tokens_the_loop_processes(tiny_model):
    from gti.train.batches import planned_tokens

    rng = random.Random(3)
    samples = [Sample([rng.randrange(5, 60) for _ in range(rng.randint(2, 9))], [rng.randrange(5, 60)] * rng.randint(1, 3))
               for _ in range(23)]
    for group in (True, False):
        options = TrainConfig(precision="float32", group_by_length=group)
        result = train(tiny_model, samples, list(tiny_model.parameters()), steps=7, lr=1e-3, batch_size=4, pad_id=0,
                       seed=5, options=options)
        assert result.tokens == planned_tokens(samples, 7, 4, 5, group) > 0


@pytest.mark.parametrize("setting", [None, True, False])
def test_deterministic_setting_is_applied_during_training_and_restored(setting):
    """None resolves to on for a CPU; the global switch holds inside the steps and is restored after."""
    seen = []
    before = torch.are_deterministic_algorithms_enabled()
    _, result = _run(steps=2, options=TrainConfig(precision="float32", deterministic=setting),
                     on_step=lambda step, loss: seen.append(torch.are_deterministic_algorithms_enabled()))
    expected = True if setting is None else setting
    assert result.deterministic is expected and seen == [expected, expected]
    assert torch.are_deterministic_algorithms_enabled() is before


def test_deterministic_cpu_training_is_byte_identical():
    a, _ = _run(steps=4, options=TrainConfig(precision="float32", deterministic=True))
    b, _ = _run(steps=4, options=TrainConfig(precision="float32", deterministic=True))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --- interruptions, checkpoints by wall time, progress output ---

import os  # noqa: E402
import signal  # noqa: E402


def test_ctrl_c_saves_a_checkpoint_after_its_step_and_the_rerun_resumes_there(tmp_path, capsys):
    options = TrainConfig(precision="float32", checkpoint_every=0, checkpoint_minutes=0)  # periodic checkpoints off
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a job started in the background
    whole, whole_result = _run(steps=8, options=options, workdir=tmp_path / "whole")

    def interrupt(step, loss):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # delivered now; the loop finishes step 3 first

    with pytest.raises(KeyboardInterrupt):
        _run(steps=8, options=options, workdir=tmp_path / "resumed", on_step=interrupt)
    assert [p.name for p in (tmp_path / "resumed").glob("step-*")] == ["step-000004"]
    assert "train: interrupted after step 4; saved a checkpoint in" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # the handler is gone again
    resumed, resumed_result = _run(steps=8, options=options, workdir=tmp_path / "resumed")
    assert "resuming train from step 4" in capsys.readouterr().out
    assert resumed_result.resumed_from == 4 and resumed_result.losses == whole_result.losses
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_checkpoints_by_wall_time(tmp_path):
    _run(steps=5, options=TrainConfig(precision="float32", checkpoint_minutes=1e-9), workdir=tmp_path / "often")
    assert [p.name for p in (tmp_path / "often").glob("step-*")] == ["step-000004"]  # one after every step but the last
    _run(steps=5, options=TrainConfig(precision="float32", checkpoint_minutes=0), workdir=tmp_path / "never")
    assert not list((tmp_path / "never").glob("step-*"))


def test_progress_in_a_log_is_plain_lines_and_quiet_is_silent(monkeypatch, capsys):
    monkeypatch.setenv("GTI_PROGRESS_SECONDS", "0")
    _run(steps=4)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and len(lines) == 4, err
    assert lines[0].startswith("train: step 1/4 (25%), loss ") and " tokens/s, " in lines[0] and ", ETA " in lines[0]
    assert lines[-1].startswith("train: step 4/4 (100%)") and "ETA" not in lines[-1]
    monkeypatch.setenv("GTI_PROGRESS_SECONDS", "3600")
    _run(steps=4)
    assert len(capsys.readouterr().err.splitlines()) == 1  # only the last step's line
    for variable in ("TQDM_DISABLE", "GTI_QUIET"):
        monkeypatch.setenv(variable, "1")
        _run(steps=4)
        assert capsys.readouterr().err == ""
        monkeypatch.delenv(variable)
