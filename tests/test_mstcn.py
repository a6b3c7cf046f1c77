"""kit.data.mstcn, kit.data.feature_files and kit.data.mstcn_export: the layout of MS-TCN and its successors,
in and out."""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

from kit.data import DataError, VideoRecord
from kit.data.feature_files import load_features
from kit.data.mstcn import (MAX_ALIGN_FRAMES, RESULT_HEADER, folds_of, is_mstcn_layout, load_mstcn, read_result,
                            validate_mstcn, write_result)
from kit.data.mstcn_export import MARKER, kfold_splits, write_mstcn_layout

CLASSES = ["take_cup", "pour_milk", "SIL", "stir"]  # mapping order, deliberately not sorted
D = 8


def _labels(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, n), 3, replace=False))
    return [CLASSES[int(np.searchsorted(cuts, t, side="right")) % len(CLASSES)] for t in range(n)]


def make_layout(root: Path, lengths=(40, 33, 57, 25, 48), folds=None, crlf=False) -> Path:
    """A small layout written with numpy and plain text, the way the public archives are."""
    nl = "\r\n" if crlf else "\n"
    stems = [f"vid{i}" for i in range(len(lengths))]
    for d in ("features", "groundTruth", "splits"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "mapping.txt").write_bytes("".join(f"{i} {c}{nl}" for i, c in enumerate(CLASSES)).encode() + b"\n\n")
    rng = np.random.default_rng(0)
    for i, (stem, n) in enumerate(zip(stems, lengths)):
        np.save(root / "features" / f"{stem}.npy", rng.standard_normal((D, n)).astype(np.float32))
        (root / "groundTruth" / f"{stem}.txt").write_bytes("".join(f"{v}{nl}" for v in _labels(n, i)).encode())
    folds = folds or [{"train": stems[:3], "test": stems[3:]}, {"train": stems[2:], "test": stems[:2]}]
    for k, fold in enumerate(folds, 1):
        for s, vids in fold.items():
            (root / "splits" / f"{s}.split{k}.bundle").write_text("".join(f"{v}.txt{nl}" for v in vids))
    return root


@pytest.fixture
def layout(tmp_path) -> Path:
    return make_layout(tmp_path / "gtea")


def _error(root, **kw) -> str:
    with pytest.raises(DataError) as e:
        load_mstcn(root, **kw)
    return str(e.value)


# --- reading ---------------------------------------------------------------------------------
def test_load_gives_records_splits_and_the_mapping_order(layout):
    records, splits, vocab = load_mstcn(layout, split_index=1, fps=15.0)
    assert vocab == {"action": CLASSES}  # mapping.txt order, not sorted
    assert [r.stem for r in records] == [f"vid{i}" for i in range(5)]
    assert [r.stem for r in splits["train"]] == ["vid0", "vid1", "vid2"]
    assert [r.stem for r in splits["test"]] == ["vid3", "vid4"] and splits["val"] == []
    r = records[2]
    assert r.video_path is None and r.keypoints is None and r.fps == 15.0
    assert r.features_path == layout / "features" / "vid2.npy"
    assert r.annotation_path == layout / "groundTruth" / "vid2.txt"
    assert r.num_frames == 57 and r.labels == {"action": _labels(57, 2)}
    assert load_features(r.features_path, r.num_frames).shape == (D, 57)
    _, splits2, _ = load_mstcn(layout, split_index=2)
    assert [r.stem for r in splits2["test"]] == ["vid0", "vid1"]
    assert folds_of(layout) == [1, 2]


def test_crlf_bom_and_trailing_blank_lines_just_work(tmp_path):
    root = make_layout(tmp_path / "d", crlf=True)
    gt = root / "groundTruth" / "vid0.txt"
    gt.write_bytes(b"\xef\xbb\xbf" + gt.read_bytes() + b"\r\n\r\n")
    records, _, vocab = load_mstcn(root)
    assert vocab["action"] == CLASSES and records[0].labels["action"] == _labels(40, 0)
    assert validate_mstcn(root).empty


def test_val_bundle_is_read_when_present(layout):
    (layout / "splits" / "train.split1.bundle").write_text("vid0.txt\nvid1.txt\n")
    (layout / "splits" / "val.split1.bundle").write_text("vid2.txt\n")
    _, splits, _ = load_mstcn(layout)
    assert [r.stem for r in splits["val"]] == ["vid2"]


def test_layout_detection(layout, demo_root, tmp_path):
    assert is_mstcn_layout(layout)
    assert not is_mstcn_layout(demo_root) and not is_mstcn_layout(tmp_path / "nowhere")
    (layout / "features").rename(layout / "feats")
    assert is_mstcn_layout(layout)  # broken, but recognisably this layout: its report names what is missing
    assert "features: folder not found" in _error(layout)


def test_missing_fold_lists_the_folds_there(layout):
    msg = _error(layout, split_index=5)
    assert "no fold 5" in msg and "[1, 2]" in msg


def test_small_length_gap_is_aligned_with_one_warning(layout, caplog):
    gt = layout / "groundTruth" / "vid0.txt"
    gt.write_text(gt.read_text() + "SIL\nSIL\nSIL\n")  # 43 labels for 40 feature columns
    np.save(layout / "features" / "vid1.npy", np.zeros((D, 35), np.float32))  # 35 columns for 33 labels
    with caplog.at_level(logging.WARNING, logger="kit"):
        records, _, _ = load_mstcn(layout)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 video(s)" in warnings[0] and "5 frames in all" in warnings[0]
    by = {r.stem: r for r in records}
    assert by["vid0"].num_frames == 40 and by["vid0"].labels["action"] == _labels(40, 0)
    assert by["vid1"].num_frames == 33 and load_features(by["vid1"].features_path, 33).shape == (D, 33)


def test_large_length_gap_is_an_error_naming_both_counts_and_the_cause(layout):
    np.save(layout / "features" / "vid2.npy", np.zeros((D, 57 + MAX_ALIGN_FRAMES + 1), np.float32))
    msg = _error(layout)
    assert "vid2.npy" in msg and "68 frames" in msg and "57 lines" in msg
    np.save(layout / "features" / "vid2.npy", np.zeros((D, 29), np.float32))  # every other frame of 57
    assert "subsampled by 2" in _error(layout)


def test_transposed_features_are_named_as_such(layout):
    np.save(layout / "features" / "vid2.npy", np.zeros((57, D), np.float32))
    msg = _error(layout)
    assert "vid2.npy" in msg and "transposed" in msg and "(T, D)" in msg


@pytest.mark.parametrize("case, expected", [
    ("pickle", "pickle"), ("object", "Python objects"), ("npz", ".npz archive"), ("3d", "3-D"),
    ("int", "dtype int64"), ("empty", "empty"), ("truncated", "truncated"), ("text", "not a .npy file")])
def test_unreadable_features_are_named_never_a_numpy_traceback(layout, case, expected):
    path = layout / "features" / "vid1.npy"
    if case == "pickle":
        path.write_bytes(pickle.dumps(np.zeros((D, 33))))
    elif case == "object":
        np.save(path, np.array([[None] * 33] * D, dtype=object), allow_pickle=True)
    elif case == "npz":
        with open(path, "wb") as f:
            np.savez(f, x=np.zeros((D, 33)))
    elif case == "3d":
        np.save(path, np.zeros((1, D, 33), np.float32))
    elif case == "int":
        np.save(path, np.zeros((D, 33), np.int64))
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        np.save(path, np.zeros((D, 33), np.float32))
        path.write_bytes(path.read_bytes()[:-100])
    else:
        path.write_text("0.1 0.2\n")
    msg = _error(layout)
    assert "vid1.npy" in msg and expected in msg, msg


def test_nan_features_are_found_by_validate_and_by_load_features(layout):
    a = np.zeros((D, 33), np.float32)
    a[3, 7] = np.nan
    a[0, 20] = np.inf
    np.save(layout / "features" / "vid1.npy", a)
    report = validate_mstcn(layout)
    assert len(report) == 1 and report.file[0].endswith("vid1.npy") and "[7, 20]" in report.problem[0]
    records, _, _ = load_mstcn(layout)  # headers only: the values are checked when read
    with pytest.raises(DataError, match=r"vid1.npy.*NaN or inf in 2 frame"):
        load_features(records[1].features_path, records[1].num_frames)


@pytest.mark.parametrize("text, line, expected", [
    ("0 take_cup\n1 pour milk\n", 2, "not \"<id> <name>\" (class names cannot contain spaces"),
    ("0 take_cup\nx pour_milk\n", 2, "not \"<id> <name>\""),
    ("0 take_cup\n0 pour_milk\n", 2, "id 0 also on line 1"),
    ("0 take_cup\n1 take_cup\n", 2, "name 'take_cup' also on line 1"),
    ("0 take_cup\n2 pour_milk\n", 2, "has id 2, expected 1"),
    ("1 take_cup\n0 pour_milk\n", 1, "sort the lines by id"),
    ("0 take_cup\n\n1 pour_milk\n", 2, "blank line"),
])
def test_malformed_mapping_names_the_line(layout, text, line, expected):
    (layout / "mapping.txt").write_text(text)
    msg = _error(layout)
    assert f"mapping.txt, line {line}:" in msg and expected in msg, msg


def test_missing_mapping_and_folders_are_all_listed(tmp_path):
    root = tmp_path / "d"
    (root / "splits").mkdir(parents=True)
    report = validate_mstcn(root)
    named = {Path(f).name for f in report.file}
    assert {"mapping.txt", "features", "groundTruth"} <= named


def test_ground_truth_problems_name_the_line(layout):
    gt = layout / "groundTruth" / "vid1.txt"
    lines = gt.read_text().splitlines()
    lines[4], lines[9] = "take cup", "unknown_thing"
    gt.write_text("\n".join(lines) + "\n")
    (layout / "groundTruth" / "vid3.txt").write_text("\n\n")
    msg = _error(layout)
    assert "vid1.txt, line 5: 2 label(s) not in mapping.txt (labels cannot contain spaces" in msg
    assert "line 10: 'unknown_thing'" in msg
    assert "vid3.txt: empty" in msg


def test_bundle_problems_name_the_line(layout):
    (layout / "splits" / "train.split1.bundle").write_text("vid0.txt\nghost.txt\nvid3.txt\n")
    msg = _error(layout)
    assert "train.split1.bundle, line 2: names 'ghost', but groundTruth/ghost.txt does not exist" in msg
    assert "features/ghost.npy does not exist" in msg
    assert "test.split1.bundle, line 1: vid3 is also on line 3 of train.split1.bundle" in msg
    (layout / "splits" / "train.split1.bundle").write_text("vid0.txt\nvid0.txt\nghost.txt\n")
    msg = _error(layout)
    assert "train.split1.bundle, line 2: vid0 is also on line 1 of train.split1.bundle" in msg
    assert "train.split1.bundle, line 3: names 'ghost'" in msg  # line numbers survive a skipped duplicate


def test_validate_lists_every_problem_at_once_and_load_raises_them_together(layout):
    (layout / "groundTruth" / "vid0.txt").write_text("bogus\n" * 40)
    np.save(layout / "features" / "vid4.npy", np.zeros((48, D), np.float32))
    report = validate_mstcn(layout)
    assert list(report.columns) == ["file", "row", "column", "problem", "fix"]
    assert sorted(Path(f).name for f in report.file) == ["vid0.txt", "vid4.npy"]
    assert report.set_index(report.file.map(lambda f: Path(f).name)).row["vid0.txt"] == 1
    assert _error(layout).startswith("2 problem(s) in the data:")
    (layout / "mapping.txt").write_text("0 take_cup\n0 pour_milk\n")  # a broken mapping hides no other problem
    assert sorted(Path(f).name for f in validate_mstcn(layout).file) == ["mapping.txt", "vid4.npy"]


def test_other_splits_of_other_folds_are_not_checked_when_loading_one(layout):
    (layout / "splits" / "test.split3.bundle").write_text("ghost.txt\n")
    load_mstcn(layout, split_index=1)  # fold 3 is broken, fold 1 loads
    assert "train.split3.bundle" in " ".join(validate_mstcn(layout).file)


# --- writing ---------------------------------------------------------------------------------
def test_round_trip_is_identical(layout, tmp_path):
    records, _, vocab = load_mstcn(layout)
    folds = [{k: [r.stem for r in v] for k, v in load_mstcn(layout, split_index=n)[1].items()} for n in (1, 2)]
    out = write_mstcn_layout(tmp_path / "out", records, vocab, folds, lambda s: layout / "features" / f"{s}.npy")
    records2, splits2, vocab2 = load_mstcn(out, split_index=2)
    assert vocab2 == vocab and [r.stem for r in splits2["test"]] == folds[1]["test"]
    for a, b in zip(records, records2):
        assert a.stem == b.stem and a.labels == b.labels and a.num_frames == b.num_frames
        fa, fb = load_features(a.features_path), load_features(b.features_path)
        assert fa.dtype == fb.dtype and np.array_equal(fa, fb)
        assert a.features_path.read_bytes() == b.features_path.read_bytes()  # copied byte for byte
    for f in ("mapping.txt", "splits/train.split1.bundle", "groundTruth/vid0.txt"):
        assert (out / f).read_text().endswith("\n")  # MS-TCN's split('\n')[:-1] keeps the last line
    assert (out / "splits" / "test.split2.bundle").read_text() == "vid0.txt\nvid1.txt\n"


def _record(stem: str, labels: list[str]) -> VideoRecord:
    return VideoRecord(stem, None, Path(f"{stem}.csv"), None, len(labels), 25.0, 64, 64, {"action": labels})


def test_writer_from_arrays_with_unlabeled_frames_and_kfold(tmp_path):
    recs = [_record(f"v{i}", ["walk"] * 5 + [""] * 3 + ["jump"] * 4) for i in range(5)]
    feats = {r.stem: np.random.default_rng(i).standard_normal((D, 12)) for i, r in enumerate(recs)}
    folds = kfold_splits([r.stem for r in recs], 4, seed=0)
    with pytest.raises(DataError, match=r"unlabeled frames in 5 video\(s\): v0 \(3 frames\).*unlabeled_as"):
        write_mstcn_layout(tmp_path / "a", recs, {"action": ["jump", "walk"]}, folds, feats.__getitem__)
    assert not (tmp_path / "a").exists()  # nothing written on a problem
    out = write_mstcn_layout(tmp_path / "a", recs, {"action": ["jump", "walk"]}, folds, feats.__getitem__,
                             unlabeled_as="background")
    assert (out / "mapping.txt").read_text() == "0 jump\n1 walk\n2 background\n"
    for n in range(1, 5):
        records, splits, vocab = load_mstcn(out, split_index=n)
        assert vocab["action"] == ["jump", "walk", "background"]
        assert records[0].labels["action"][5:8] == ["background"] * 3
        assert np.array_equal(load_features(records[0].features_path), feats["v0"])
    assert sorted(s for f in folds for s in f["test"]) == [r.stem for r in recs]


def test_writer_refuses_what_the_layout_cannot_hold(tmp_path):
    feats = lambda s: np.zeros((D, 4))  # noqa: E731
    fold = [{"train": ["a"], "test": ["b"]}]
    cases = [([_record("a", ["x"] * 4), _record("b", ["take cup"] * 4)], ["x", "take cup"], "whitespace"),
             ([_record("a", ["x"] * 4), _record("b.v2", ["x"] * 4)], ["x"], "a dot"),
             ([_record("a", ["x"] * 4), _record("b", ["y"] * 4)], ["x"], "label 'y'"),
             ([_record("a", ["x"] * 4), _record("b", ["x"] * 5)], ["x"], "4 frames .*, but b has 5 labelled"),
             ([_record("a", ["x"] * 4), VideoRecord("b", None, Path("b.csv"), None, 4, 0.0, 0, 0,
                                                     {"action": ["x"] * 5})], ["x"], "5 action labels for 4 frames")]
    for recs, vocab, expected in cases:
        with pytest.raises(DataError, match=expected):
            write_mstcn_layout(tmp_path / "o", recs, vocab, [{"train": ["a"], "test": [recs[1].stem]}], feats)
    recs = [_record("a", ["x"] * 4), _record("b", ["x"] * 4)]
    with pytest.raises(DataError, match="b is in train and test"):
        write_mstcn_layout(tmp_path / "o", recs, ["x"], [{"train": ["a", "b"], "test": ["b"]}], feats)
    with pytest.raises(DataError, match="NaN or inf"):
        write_mstcn_layout(tmp_path / "o", recs, ["x"], fold, lambda s: np.full((D, 4), np.nan))
    assert not (tmp_path / "o").exists()


def test_writer_never_touches_a_folder_it_did_not_make(tmp_path):
    recs = [_record("a", ["x"] * 4), _record("b", ["x"] * 4)]
    feats = lambda s: np.zeros((D, 4), np.float32)  # noqa: E731
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty and not written by kit"):
        write_mstcn_layout(user, recs, ["x"], [{"train": ["a"], "test": ["b"]}], feats)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    out = tmp_path / "out"
    write_mstcn_layout(out, recs, ["x"], [{"train": ["a"], "test": ["b"]}, {"train": ["b"], "test": ["a"]}], feats)
    assert (out / MARKER).is_file() and (out / "splits" / "test.split2.bundle").is_file()
    write_mstcn_layout(out, recs, ["x"], [{"train": ["a"], "test": ["b"]}], feats)  # the kit's own folder: replaced
    assert folds_of(out) == [1]  # fold 2 of the first export is gone
    (out / "splits" / "mine.txt").write_text("a user's file")
    with pytest.raises(DataError, match=r"holds files kit did not write: \['splits/mine.txt'\]"):
        write_mstcn_layout(out, recs, ["x"], [{"train": ["a"], "test": ["b"]}], feats)
    assert (out / "splits" / "mine.txt").read_text() == "a user's file"


def test_writer_copies_and_never_modifies_a_longer_source(layout, tmp_path):
    np.save(layout / "features" / "vid1.npy", np.arange(D * 36, dtype=np.float32).reshape(D, 36))  # 33 labels
    before = (layout / "features" / "vid1.npy").read_bytes()
    records, splits, vocab = load_mstcn(layout)
    folds = [{k: [r.stem for r in v] for k, v in splits.items()}]
    out = write_mstcn_layout(tmp_path / "o", records, vocab, folds, lambda s: layout / "features" / f"{s}.npy")
    assert (layout / "features" / "vid1.npy").read_bytes() == before
    assert np.load(out / "features" / "vid1.npy").shape == (D, 33)  # cut to the labelled frames
    assert validate_mstcn(out).empty


def test_kfold_splits_are_seeded_and_partition_the_videos():
    stems = [f"v{i:02d}" for i in range(10)]
    folds = kfold_splits(stems, 4, seed=3)
    assert len(folds) == 4 and sorted(s for f in folds for s in f["test"]) == stems
    assert [len(f["test"]) for f in folds] == [3, 3, 2, 2]
    for f in folds:
        assert sorted(f["train"] + f["test"]) == stems and f["val"] == []
    assert kfold_splits(stems[::-1], 4, seed=3) == folds  # independent of input order
    assert kfold_splits(stems, 4, seed=4) != folds
    with_val = kfold_splits(stems, 4, seed=3, val_fraction=0.25)
    for f, g in zip(with_val, folds):
        assert f["test"] == g["test"] and len(f["val"]) == 2 and sorted(f["train"] + f["val"]) == g["train"]
    with pytest.raises(ValueError, match="2 <= k <= 10"):
        kfold_splits(stems, 11)


# --- result files ----------------------------------------------------------------------------
def test_result_file_is_what_mstcn_eval_reads(tmp_path):
    path = tmp_path / "vid"
    write_result(path, ["take_cup", "take_cup", "pour_milk"])
    text = path.read_text()
    assert text.split("\n")[0] == RESULT_HEADER
    assert text.split("\n")[1].split() == ["take_cup", "take_cup", "pour_milk"]  # eval.py's own parsing
    assert read_result(path) == ["take_cup", "take_cup", "pour_milk"]


def test_result_file_refuses_labels_with_spaces_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match="spaces"):
        write_result(tmp_path / "x", ["take cup"])
    (tmp_path / "y").write_text("take_cup\n")
    with pytest.raises(DataError, match="line 1"):
        read_result(tmp_path / "y")


# --- the published recipe --------------------------------------------------------------------
@pytest.mark.parametrize("name, value, source", [
    ("tcn_stages", 4, "main.py:25"), ("tcn_layers", 10, "main.py:26"), ("tcn_channels", 64, "main.py:27"),
    ("dropout", 0.5, "model.py:46"), ("optimizer", "adam", "model.py:65"), ("lr", 5e-4, "main.py:30"),
    ("weight_decay", 0.0, "model.py:65"), ("batch_size", 1, "main.py:29"), ("grad_accum", 1, "model.py:73-83"),
    ("epochs", 50, "main.py:31"), ("smooth_weight", 0.15, "model.py:79"), ("smooth_tau", 4.0, "model.py:79"),
    ("warmup_steps", 0, "model.py:62-93"), ("lr_schedule", "constant", "model.py:62-93"),
    ("grad_clip", 0.0, "model.py:82-83"), ("class_weights", False, "model.py:58"),
    ("mixed_precision", "no", "model.py:62-93"), ("use_pose", False, "model.py:14")])
def test_mstcn_recipe_value_and_its_source(name, value, source):
    from kit.temporal.recipes import RECIPES

    recipe = RECIPES["mstcn"]
    assert recipe.values[name] == value and type(recipe.values[name]) is type(value)
    assert recipe.sources[name].startswith(source)


def test_mstcn_recipe_covers_exactly_its_sources_and_the_sample_rates():
    from kit.config import field_names
    from kit.temporal.recipes import RECIPES

    recipe = RECIPES["mstcn"]
    assert set(recipe.values) == set(recipe.sources) and set(recipe.values) <= set(field_names())
    assert recipe.sample_rate == {"50salads": 2, "breakfast": 1, "gtea": 1}
    assert any("last epoch" in t for t in recipe.trainer) and any("sample_rate" in t for t in recipe.trainer)


def test_apply_recipe_fills_defaults_keeps_what_you_set_and_says_so(caplog):
    from kit.config import RunConfig
    from kit.temporal.recipes import apply_recipe

    assert apply_recipe(RunConfig()) == RunConfig()  # no recipe: unchanged
    with caplog.at_level(logging.INFO, logger="kit"):
        cfg = apply_recipe(RunConfig(recipe="mstcn", epochs=5, data_root="/data/50salads", sample_rate=1))
    assert (cfg.tcn_stages, cfg.tcn_layers, cfg.lr, cfg.optimizer, cfg.lr_schedule, cfg.epochs) == \
        (4, 10, 5e-4, "adam", "constant", 5)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "tcn_stages 2 -> 4" in said and "lr 0.001 -> 0.0005" in said
    assert "kept the values you set: epochs=5 (the recipe has 50)" in said
    assert "sample_rate 2 on 50salads" in said
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kit"):
        assert apply_recipe(cfg) == cfg  # a second application changes nothing
    assert "->" not in " ".join(r.getMessage() for r in caplog.records)


def test_new_config_fields_are_checked():
    from kit.config import RunConfig

    for bad in (dict(dataset_format="csv"), dict(recipe="ms-tcn"), dict(optimizer="sgd"),
                dict(lr_schedule="step"), dict(split_index=0), dict(sample_rate=0), dict(fps=-1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RunConfig(**bad)


def test_writer_reports_unreadable_feature_sources(tmp_path):
    recs = [_record("a", ["x"] * 4), _record("b", ["x"] * 4)]
    npz = tmp_path / "b.npy"
    with open(npz, "wb") as f:
        np.savez(f, x=np.zeros((D, 4)))
    (tmp_path / "a.npy").write_bytes(b"")
    with pytest.raises(DataError) as e:
        write_mstcn_layout(tmp_path / "o", recs, ["x"], [{"train": ["a"], "test": ["b"]}],
                           lambda s: tmp_path / f"{s}.npy")
    assert "a.npy: not a readable .npy array" in str(e.value) and "b.npy: an .npz archive" in str(e.value)
    assert not is_mstcn_layout("")  # the demo data, never the current folder


def test_load_features_names_a_file_broken_after_loading(layout):
    records, _, _ = load_mstcn(layout)
    records[0].features_path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match=r"vid0.npy: not a readable .npy array"):
        load_features(records[0].features_path)


def test_files_without_a_final_newline_are_read_whole_with_a_warning_naming_upstreams_reading(layout, caplog):
    gt = layout / "groundTruth" / "vid0.txt"
    gt.write_text(gt.read_text().rstrip("\n"))  # 40 labels, the last one unterminated
    bundle = layout / "splits" / "test.split1.bundle"
    bundle.write_text(bundle.read_text().rstrip("\n"))
    with caplog.at_level(logging.WARNING, logger="kit"):
        records, splits, _ = load_mstcn(layout, split_index=1)
    assert next(r for r in records if r.stem == "vid0").num_frames == 40  # the kit keeps the last line
    assert [r.stem for r in splits["test"]] == ["vid3", "vid4"]
    warning = next(m for m in caplog.messages if "final newline" in m)
    assert "1 ground-truth file(s) and 1 bundle(s)" in warning and "one frame fewer" in warning
    caplog.clear()
    make_layout(layout)  # every file terminated again: no warning
    with caplog.at_level(logging.WARNING, logger="kit"):
        load_mstcn(layout, split_index=1)
    assert not any("final newline" in m for m in caplog.messages)
