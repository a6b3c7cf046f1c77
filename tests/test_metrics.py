"""kit.temporal.metrics: hand-worked cases, MS-TCN eval.py's quirks, and a randomized cross-check."""
import functools
import itertools
import random

import numpy as np
import pytest

from kit.temporal.metrics import (IGNORE_INDEX, confusion, edit_score, f1_at_k, frame_accuracy, levenshtein,
                         macro_f1, per_class_report, segment_metrics, segments, task_metrics)


def approx(d):
    return {k: pytest.approx(v) for k, v in d.items()}


def scores(acc, edit, f10, f25, f50):
    return approx({"acc": acc, "edit": edit, "f1@10": f10, "f1@25": f25, "f1@50": f50})


def test_perfect():
    gts = [["a"] * 3 + ["b"] * 4 + ["c"] * 2, ["c", "c", "a"]]
    assert segment_metrics(gts, gts) == {"acc": 100.0, "edit": 100.0, "f1@10": 100.0, "f1@25": 100.0,
                                         "f1@50": 100.0}


def test_shifted_boundary():
    gt = [0] * 10 + [1] * 10
    # boundary 3 frames late: IoUs 10/13 and 7/10, every segment matched at every k
    late = [0] * 13 + [1] * 7
    assert segment_metrics([late], [gt]) == scores(85, 100, 100, 100, 100)
    # 6 frames late: IoUs 10/16 and 4/10, so at k=50 one TP, one FP, one FN: P = R = F1 = 0.5
    later = [0] * 16 + [1] * 4
    assert segment_metrics([later], [gt]) == scores(70, 100, 100, 100, 50)


def test_over_segmentation():
    gt = [0] * 10 + [1] * 10
    pred = [0] * 4 + [1] * 2 + [0] * 4 + [1] * 10  # P = 0 1 0 1, Y = 0 1: 2 edits of 4
    # k <= 40: 0[0,4) hits gt 0 (IoU .4); 1[4,6) overlaps no gt 1 (FP); 0[6,10)'s best gt 0 is
    # taken (FP); 1[10,20) exact (TP): TP 2, FP 2, FN 0 -> P 1/2, R 1 -> F1 2/3.
    # k = 50: only 1[10,20) matches: TP 1, FP 3, FN 1 -> P 1/4, R 1/2 -> F1 1/3.
    assert segment_metrics([pred], [gt]) == scores(90, 50, 200 / 3, 200 / 3, 100 / 3)


def test_missed_segment():
    gt = [0] * 6 + [1] * 4 + [2] * 10
    pred = [0] * 10 + [2] * 10  # P = 0 2, Y = 0 1 2: one deletion of 3
    # 0[0,10) vs 0[0,6): IoU .6; 2 exact: TP 2, FP 0, FN 1 -> P 1, R 2/3 -> F1 0.8
    assert segment_metrics([pred], [gt]) == scores(80, 100 * (1 - 1 / 3), 80, 80, 80)


def test_background_removal():
    gt = ["bg"] * 5 + ["a"] * 5 + ["bg"] * 5 + ["a"] * 5
    pred = ["bg"] * 3 + ["a"] * 7 + ["bg"] * 10
    # without background: Y = bg a bg a, P = bg a bg -> 1 edit of 4; acc counts bg frames too
    assert segment_metrics([pred], [gt])["edit"] == pytest.approx(75)
    # with bg removed: Y = a a (the bg run keeps them apart), P = a -> 1 edit of 2;
    # a[3,10) vs a[5,10): IoU 5/7: TP 1, FP 0, FN 1 -> F1 2/3
    assert segment_metrics([pred], [gt], background=["bg"]) == scores(65, 50, 200 / 3, 200 / 3, 200 / 3)
    assert segments(gt, ["bg"]) == (["a", "a"], [5, 15], [10, 20])


def test_empty_prediction():
    gt = ["bg"] * 5 + ["a"] * 10 + ["bg"] * 5
    pred = ["bg"] * 20
    # no predicted segment: edit 1 - 1/1 = 0; TP 0, FP 0, FN 1 -> P, R guarded to 0 -> F1 0
    assert segment_metrics([pred], [gt], ("bg",)) == scores(50, 0, 0, 0, 0)
    # nothing on either side: edit 100 (eval.py would give 0/0); F1 0 as eval.py's nan_to_num
    assert segment_metrics([pred], [pred], ("bg",))["edit"] == 100.0
    assert segment_metrics([pred], [pred], ("bg",))["f1@50"] == 0.0
    # segments predicted where the ground truth has none: false positives (eval.py crashes here)
    assert f1_at_k([gt, gt], [pred, gt], 50, ("bg",)) == pytest.approx(100 * 2 * 0.5 / 1.5)


def test_eval_py_matching_rule():
    # a predicted segment competes only for its best-IoU ground-truth segment: when that one is
    # already matched it is a false positive even if another ground-truth segment would match.
    gt = ["a"] * 10 + ["b"] * 2 + ["a"] * 8
    pred = ["a"] * 5 + ["c"] + ["a"] * 9 + ["c"] * 5
    # a[0,5): IoU .5 with a[0,10) -> TP. a[6,15): IoU 4/15 with a[0,10) (taken) > 3/14 with a[12,20)
    # -> FP. Both c segments FP. TP 1, FP 3, FN 2 -> P 1/4, R 1/3 -> F1 2/7 (greedy would say 4/7).
    assert f1_at_k([pred], [gt], 10) == pytest.approx(200 / 7)
    # IoU ties go to the first ground-truth segment: a[2,8) has IoU 2/8 with both a[0,4) and
    # a[6,10) and takes a[0,4), which leaves a[6,10) to a[9,10) (IoU 1/4). TP 2, FP 2 (the c's),
    # FN 1 (b) -> P 1/2, R 2/3 -> F1 4/7 (2/7 if the tie went to a[6,10)).
    gt = ["a"] * 4 + ["b"] * 2 + ["a"] * 4
    pred = ["c"] * 2 + ["a"] * 6 + ["c"] + ["a"]
    assert f1_at_k([pred], [gt], 25) == pytest.approx(400 / 7)


def test_ignored_frames_are_dropped():
    gt = np.array([0, 0, IGNORE_INDEX, IGNORE_INDEX, 1, 1])
    pred = np.array([0, 0, 1, 1, 1, 1])
    assert segment_metrics([pred], [gt])["acc"] == 100.0
    # predictions under unlabelled frames do not make segments either: 1 [0 0] 1 -> 1 1
    assert edit_score([[1, 0, 0, 1]], [[1, IGNORE_INDEX, IGNORE_INDEX, 1]]) == 100.0
    assert edit_score([[1, 0, 0, 1]], [[1, 1, 1, 1]]) == pytest.approx(100 / 3)
    assert frame_accuracy([["a", "b", "b"]], [["a", "", None]]) == 100.0
    # a video with no labelled frame is skipped, not scored 100 or 0
    assert edit_score([[0, 1], [0, 0]], [[IGNORE_INDEX] * 2, [0, 0]]) == 100.0
    assert np.isnan(frame_accuracy([[0]], [[IGNORE_INDEX]]))


def test_frame_level_metrics_and_reports():
    gts = [[0, 0, 1, 1, 2, IGNORE_INDEX], [2, 2, 0]]
    preds = [[0, 1, 1, 1, 2, 0], [2, 0, 0]]
    # per class over the 8 labelled frames: 0: P 2/3 R 2/3; 1: P 2/3 R 1; 2: P 1 R 2/3
    f = [2 / 3, 2 * (2 / 3) / (5 / 3), 2 * (2 / 3) / (5 / 3)]
    assert macro_f1(preds, gts) == pytest.approx(100 * sum(f) / 3)
    assert frame_accuracy(preds, gts) == pytest.approx(100 * 6 / 8)
    cm = confusion(preds, gts, labels=[0, 1, 2])
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]
    rep = per_class_report(preds, gts, class_names=["idle", "walk", "jump"])
    assert list(rep.index) == ["idle", "walk", "jump"]  # no average rows: macro_f1 is the one macro-F1
    assert rep.loc["walk", "recall"] == pytest.approx(100) and rep.loc["idle", "support"] == 3
    tm = task_metrics(preds, gts, ["idle", "walk", "jump"], background=["idle"])
    assert set(tm) == {"acc", "macro_f1", "edit", "f1@10", "f1@25", "f1@50"}
    # "idle" maps to index 0: segments 1 2 | 2 vs 1 2 | 2 -> edit 100
    assert tm["edit"] == 100.0 and tm["macro_f1"] == pytest.approx(100 * sum(f) / 3)


def test_bad_input():
    with pytest.raises(ValueError, match="video 0"):
        segment_metrics([[0, 1]], [[0, 1, 1]])
    with pytest.raises(ValueError, match="2 videos"):
        segment_metrics([[0], [1]], [[0]])
    with pytest.raises(ValueError, match="percent"):
        f1_at_k([[0]], [[0]], 0.5)


def test_ignore_index_matches_data():
    data = pytest.importorskip("kit.data")
    assert data.IGNORE_INDEX == IGNORE_INDEX


# --- an independent, deliberately plain implementation -------------------------------------------
def ref_segments(seq, bg):
    out, pos = [], 0
    for label, run in itertools.groupby(seq):
        n = len(list(run))
        if label not in bg:
            out.append((label, pos, pos + n))
        pos += n
    return out


def ref_levenshtein(a, b):
    @functools.lru_cache(maxsize=None)
    def d(i, j):  # distance between a[:i] and b[:j]
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


def ref_metrics(preds, gts, bg):
    correct = total = 0
    edits, tp, fp, fn = [], [0] * 3, [0] * 3, [0] * 3
    for p, g in zip(preds, gts):
        labelled = [y != IGNORE_INDEX for y in g]
        if not any(labelled):
            continue
        correct += sum(x == y for x, y, k in zip(p, g, labelled) if k)
        total += sum(labelled)
        # unlabelled frames are a gap in both sequences: they separate segments and belong to none
        p = [x if k else IGNORE_INDEX for x, k in zip(p, labelled)]
        P, Y = ref_segments(p, (*bg, IGNORE_INDEX)), ref_segments(g, (*bg, IGNORE_INDEX))
        lp, ly = tuple(s[0] for s in P), tuple(s[0] for s in Y)
        if lp or ly:
            edits.append((1 - ref_levenshtein(lp, ly) / max(len(lp), len(ly))) * 100)
        else:
            edits.append(100.0)
        for i, k in enumerate((0.10, 0.25, 0.50)):
            used = [False] * len(Y)
            for label, s, e in P:
                best, best_iou = None, None
                for j, (gl, gs, ge) in enumerate(Y):
                    iou = (min(e, ge) - max(s, gs)) / (max(e, ge) - min(s, gs)) if gl == label else 0.0
                    if best is None or iou > best_iou:
                        best, best_iou = j, iou
                if best is not None and best_iou >= k and not used[best]:
                    used[best] = True
                    tp[i] += 1
                else:
                    fp[i] += 1
            fn[i] += used.count(False)
    out = {"acc": 100 * correct / total, "edit": sum(edits) / len(edits)}
    for i, k in enumerate((10, 25, 50)):
        prec = tp[i] / (tp[i] + fp[i]) if tp[i] + fp[i] else 0
        rec = tp[i] / (tp[i] + fn[i]) if tp[i] + fn[i] else 0
        out[f"f1@{k}"] = 2 * prec * rec / (prec + rec) * 100 if prec + rec else 0.0
    return out


def random_sequence(rng, n, classes=4):
    seq = []
    while len(seq) < n:
        seq += [rng.randrange(classes)] * rng.randint(1, 8)
    return seq[:n]


def test_randomized_against_reference():
    rng = random.Random(0)
    for trial in range(150):
        n_videos = rng.randint(1, 4)
        gts, preds = [], []
        for _ in range(n_videos):
            n = rng.randint(1, 40)
            g = random_sequence(rng, n)
            # predictions: the truth with jittered labels and shifted boundaries, or random
            if rng.random() < 0.3:
                p = random_sequence(rng, n)
            else:
                shift = rng.randint(0, min(3, n - 1))
                p = [x if rng.random() < 0.85 else rng.randrange(4) for x in g[shift:] + g[-1:] * shift]
            if rng.random() < 0.3:
                for i in rng.sample(range(n), rng.randint(1, n)):
                    g[i] = IGNORE_INDEX
            gts.append(np.array(g))
            preds.append(np.array(p))
        bg = rng.choice([(), (0,), (0, 3)])
        if not any((g != IGNORE_INDEX).any() for g in gts):
            continue
        got = segment_metrics(preds, gts, bg)
        want = ref_metrics([p.tolist() for p in preds], [g.tolist() for g in gts], bg)
        assert got == approx(want), (trial, preds, gts, bg)


def test_levenshtein_and_segments_basics():
    assert levenshtein("kitten", "sitting") == 3 == ref_levenshtein("kitten", "sitting")
    assert levenshtein([], [1, 2]) == 2 and levenshtein([1], []) == 1
    assert segments([]) == ([], [], [])
    assert segments([1, 1, 2]) == ([1, 2], [0, 2], [2, 3])


def test_unlabelled_gaps_separate_segments_and_count_neither_way():
    """GT A(10) gap(10) A(10), prediction A5 B5 A20: three predicted segments against two, edit 66.7."""
    A, B, U = 0, 1, IGNORE_INDEX
    gt = [[A] * 10 + [U] * 10 + [A] * 10]
    pred = [[A] * 5 + [B] * 5 + [A] * 20]
    assert edit_score(pred, gt) == pytest.approx(100 * (1 - 1 / 3))  # [A, B, A] vs [A, A]
    # the predicted A over the gap is cut there: segments A[0,5) B[5,10) A[20,30) vs A[0,10) A[20,30)
    assert f1_at_k(pred, gt, 50) == pytest.approx(100 * 2 * (2 / 3) * 1 / (2 / 3 + 1))  # P 2/3, R 2/2
    assert frame_accuracy(pred, gt) == pytest.approx(100 * 15 / 20)  # the gap's 10 frames are not scored
    # strings: "" is unlabelled, the same rule
    assert edit_score([["a"] * 5 + ["b"] * 5 + ["a"] * 20], [["a"] * 10 + [""] * 10 + ["a"] * 10]) == \
        pytest.approx(100 * (1 - 1 / 3))


def test_unseen_classes_are_errors_and_macro_f1_is_over_the_ground_truths_classes():
    UNSEEN = -1  # kit.data.labels.UNSEEN: a validation label the training split never had
    gt = [[0, 0, UNSEEN, UNSEEN]]
    pred = [[0, 0, 0, 0]]
    assert frame_accuracy(pred, gt) == 50.0  # not 100: the unseen frames count as errors
    # classes of the ground truth: 0 (P 2/4, R 1) and UNSEEN (F1 0)
    assert macro_f1(pred, gt) == pytest.approx(100 * (2 * 0.5 * 1 / 1.5) / 2)
    assert edit_score(pred, gt) == 50.0  # [0] vs [0, UNSEEN]
