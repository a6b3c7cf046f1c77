"""``python -m kit import-labels``: BORIS, CVAT, ELAN and segment-JSON files written by the test in each tool's
documented layout (see the readers' docstrings for the sources) from the demo's own annotations import back to the
same per-frame labels; the problems a lab meets are errors or warnings with counts, and nothing is overwritten."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from kit.__main__ import main
from kit.data import load_records
from kit.data.label_formats import import_labels
from kit.data.label_formats.timeline import frame_times
from kit.data.video import DataError


@pytest.fixture(scope="module")
def demo(demo_root):
    """(records, {stem: frame times}) of the 6-video demo."""
    records = load_records(demo_root)
    return records, {r.stem: frame_times(r.video_path) for r in records}


@pytest.fixture
def root(demo_root, tmp_path):
    """An empty dataset: the demo videos (linked), no annotations."""
    (tmp_path / "data" / "Videos").mkdir(parents=True)
    for v in sorted((demo_root / "Videos").iterdir()):
        (tmp_path / "data" / "Videos" / v.name).symlink_to(v)
    return tmp_path / "data"


def _runs(labels):
    """[(label, first, last)] runs of equal non-empty labels."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start]:
                out.append((labels[start], start, i - 1))
            start = i
    return out


def _secs(times, frame):
    """The time a frame starts showing (the end of the last frame past it), 3 decimals like BORIS."""
    step = float(np.median(np.diff(times)))
    return round(float(times[frame]) if frame < len(times) else float(times[-1]) + step, 3)


def _boris_tabular(rec, times, subject="mouse"):
    """BORIS 'Export events' rows (boris/export_observation.py, export_tabular_events) of one video."""
    rows = []
    for label, a, b in _runs(rec.labels["action"]):
        for kind, t in (("START", _secs(times, a)), ("STOP", _secs(times, b + 1))):
            rows.append({"Observation id": f"obs {rec.stem}", "Observation date": "2025-01-31 10:00:00",
                         "Description": "", "Observation duration": f"{_secs(times, len(times)):.3f}",
                         "Observation type": "Media file(s)", "Source": f"player #1:/data/{rec.stem}.mp4",
                         "Time offset (s)": "0.0", "Media duration (s)": f"{_secs(times, len(times)):.3f}",
                         "FPS": f"{rec.fps:.3f}", "Subject": subject, "Behavior": label, "Behavioral category": "",
                         "Behavior type": kind, "Time": f"{t:.3f}", "Media file name": f"/data/{rec.stem}.mp4",
                         "Image index": "NA", "Image file path": "NA", "Comment": ""})
    return rows


def _actions(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)["action"].tolist()


def test_boris_export_of_the_demo_imports_to_its_labels(demo, root, tmp_path, capsys):
    records, times = demo
    rows = [r for rec in records for r in _boris_tabular(rec, times[rec.stem])]
    rows.insert(3, {**rows[0], "Behavior": "sniff", "Behavior type": "POINT"})  # a point event: warned, skipped
    export = tmp_path / "boris_events.tsv"
    pd.DataFrame(rows).to_csv(export, sep="\t", index=False)
    assert main(["import-labels", str(export), "--data_root", str(root)]) == 0
    assert f"{len(records)} annotation CSV(s) written" in capsys.readouterr().out
    for rec in records:
        assert _actions(root / "Annotations" / f"{rec.stem}.csv") == rec.labels["action"], rec.stem
    # the imported dataset loads and trains like the original: same labels per video
    (root / "splits.csv").write_text((records[0].video_path.parents[1] / "splits.csv").read_text())
    assert [r.labels["action"] for r in load_records(root)] == [r.labels["action"] for r in records]


def test_boris_aggregated_export_and_point_column(demo, root, tmp_path):
    records, times = demo
    rec = records[0]
    rows = [{"Observation id": "o", "Subject": "", "Behavior": lab, "Behavioral category": "",
             "Behavior type": "STATE", "Start (s)": f"{_secs(times[rec.stem], a):.3f}",
             "Stop (s)": f"{_secs(times[rec.stem], b + 1):.3f}", "Duration (s)": "",
             "Media file name": f"C:\\videos\\{rec.stem}.mp4", "FPS": f"{rec.fps:.3f}"}
            for lab, a, b in _runs(rec.labels["action"])]
    rows.append({**rows[0], "Behavior": "sniff", "Behavior type": "POINT", "Start (s)": "0.200", "Stop (s)": "NA"})
    export = tmp_path / "aggregated.csv"
    pd.DataFrame(rows).to_csv(export, index=False)
    (done,) = import_labels([export], root, points="column")
    df = pd.read_csv(done.path, dtype=str, keep_default_na=False)
    assert df["action"].tolist() == rec.labels["action"]
    assert (df["point_events"] == "sniff").sum() == 1 and df["point_events"][5] == "sniff"  # 0.2 s at 25 fps


def _cvat_xml(rec, attribute=False):
    """A 'CVAT for video 1.1' export of one video (docs.cvat.ai XML format, interpolation mode): one track per
    segment, a box on every frame, outside="1" on the frame after it."""
    labels = sorted({v for v in rec.labels["action"] if v})
    tracks = []
    for k, (lab, a, b) in enumerate(_runs(rec.labels["action"])):
        shapes = [f'    <box frame="{f}" keyframe="{int(f == a)}" outside="0" occluded="0" xtl="10.0" ytl="10.0" '
                  f'xbr="50.0" ybr="90.0" z_order="0">'
                  + (f'<attribute name="behaviour">{lab}</attribute>' if attribute else "") + "</box>"
                  for f in range(a, b + 1)]
        if b + 1 < rec.num_frames:
            shapes.append(f'    <box frame="{b + 1}" keyframe="1" outside="1" occluded="0" xtl="10.0" ytl="10.0" '
                          'xbr="50.0" ybr="90.0" z_order="0"></box>')
        tracks.append(f'  <track id="{k}" label="{"person" if attribute else lab}" source="manual">\n'
                      + "\n".join(shapes) + "\n  </track>")
    names = ["person"] if attribute else labels
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n    <task>\n'
            f'      <id>7</id>\n      <name>{rec.stem}</name>\n      <size>{rec.num_frames}</size>\n'
            f'      <mode>interpolation</mode>\n      <overlap>5</overlap>\n      <start_frame>0</start_frame>\n'
            f'      <stop_frame>{rec.num_frames - 1}</stop_frame>\n      <frame_filter></frame_filter>\n'
            "      <labels>\n" + "".join(f"        <label><name>{n}</name><attributes></attributes></label>\n"
                                        for n in names)
            + f"      </labels>\n      <original_size><width>{rec.width}</width><height>{rec.height}</height>"
            f"</original_size>\n    </task>\n    <source>{rec.stem}.mp4</source>\n  </meta>\n"
            + "\n".join(tracks) + "\n</annotations>\n")


def test_cvat_video_xml_of_the_demo_imports_to_its_labels(demo, root, tmp_path):
    records, _ = demo
    files = []
    for rec in records:
        files.append(tmp_path / f"{rec.stem}_annotations.xml")
        files[-1].write_text(_cvat_xml(rec))
    done = import_labels(files, root)
    assert [d.stem for d in done] == [r.stem for r in records]
    for rec in records:
        assert _actions(root / "Annotations" / f"{rec.stem}.csv") == rec.labels["action"], rec.stem
    # labels from a per-frame attribute of one "person" track
    rec = records[1]
    (tmp_path / "attr.xml").write_text(_cvat_xml(rec, attribute=True))
    (done,) = import_labels([tmp_path / "attr.xml"], root, out=tmp_path / "attr", attribute="behaviour")
    assert _actions(done.path) == rec.labels["action"]


def test_elan_tier_and_segment_json_import_to_the_labels(demo, root, tmp_path, caplog):
    records, times = demo
    rec, t = records[2], times[records[2].stem]
    runs = _runs(rec.labels["action"])
    slots = "".join(f'<TIME_SLOT TIME_SLOT_ID="ts{2 * k + j}" TIME_VALUE="{round(_secs(t, f) * 1000)}"/>'
                    for k, (_, a, b) in enumerate(runs) for j, f in enumerate((a, b + 1)))
    anns = "".join(f'<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a{k}" TIME_SLOT_REF1="ts{2 * k}" '
                   f'TIME_SLOT_REF2="ts{2 * k + 1}"><ANNOTATION_VALUE>{lab}</ANNOTATION_VALUE>'
                   "</ALIGNABLE_ANNOTATION></ANNOTATION>" for k, (lab, _, _) in enumerate(runs))
    # EAF 3.0 (www.mpi.nl/tools/elan/EAFv3.0.xsd): a second tier that is not the behaviours
    (tmp_path / "x.eaf").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<ANNOTATION_DOCUMENT AUTHOR="" DATE="2025-01-31T10:00:00+01:00" '
        'FORMAT="3.0" VERSION="3.0"><HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">'
        f'<MEDIA_DESCRIPTOR MEDIA_URL="file:///data/{rec.stem}.mp4" MIME_TYPE="video/mp4" '
        f'RELATIVE_MEDIA_URL="./{rec.stem}.mp4"/></HEADER><TIME_ORDER>{slots}</TIME_ORDER>'
        f'<TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="behaviour">{anns}</TIER>'
        f'<TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="notes">{anns}</TIER>'
        '<LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="default-lt" TIME_ALIGNABLE="true"/>'
        "</ANNOTATION_DOCUMENT>\n")
    with pytest.raises(DataError, match="2 tiers with time-aligned annotations"):
        import_labels([tmp_path / "x.eaf"], root)
    (done,) = import_labels([tmp_path / "x.eaf"], root, tier="behaviour")
    assert _actions(done.path) == rec.labels["action"]
    # ActivityNet layout, video id without the stem's prefix is matched too
    seg = {"database": {rec.stem: {"duration": _secs(t, len(t)), "subset": "training", "annotations": [
        {"segment": [_secs(t, a), _secs(t, b + 1)], "label": lab} for lab, a, b in runs]},
        "QOlSCBRmfWY": {"duration": 82.7, "annotations": [{"segment": [6.2, 60.0], "label": "Ballet"}]}}}
    (tmp_path / "seg.json").write_text(json.dumps(seg))
    with caplog.at_level(logging.WARNING, logger="kit"):
        (done,) = import_labels([tmp_path / "seg.json"], root, out=tmp_path / "seg")
    assert _actions(done.path) == rec.labels["action"]
    assert "1 of its 2 video(s) are not in" in caplog.text and "'QOlSCBRmfWY'" in caplog.text


def test_problems_are_errors_with_counts_and_nothing_is_written(demo, root, tmp_path, caplog):
    records, times = demo
    rec, t = records[0], times[records[0].stem]
    base = _boris_tabular(rec, t)
    export = tmp_path / "e.csv"

    def run(rows, **kw):
        pd.DataFrame(rows).to_csv(export, index=False)
        return import_labels([export], root, **kw)

    with pytest.raises(DataError, match=r"1 event\(s\) of unknown behaviours: \{'walk'") as e:
        run(base[:2] + [{**base[2], "Behavior": "walk"}, {**base[3], "Behavior": "walk"}] + base[4:],
            classes=sorted({v for v in rec.labels["action"] if v}))
    assert not (root / "Annotations").exists()
    # two states at once for one subject: an error, or with overlap="join" a multi-label column `a|b`
    extra = [{**base[0], "Behavior": "rear", "Time": f"{_secs(t, 0):.3f}"},
             {**base[1], "Behavior": "rear", "Time": f"{_secs(t, 10):.3f}"}]
    with pytest.raises(DataError, match=r"10 frame\(s\) of column 'action' carry two or more labels.*mouse: "):
        run(base + extra)
    (done,) = run(base + extra, overlap="join")
    acts = _actions(done.path)
    assert acts[:10] == ["|".join(sorted({"rear", rec.labels["action"][0]}))] * 10
    assert acts[10:] == rec.labels["action"][10:]
    # the existing CSV is kept unless --overwrite
    with pytest.raises(DataError, match="exists: the kit does not replace"):
        run(base)
    assert _actions(done.path) == acts
    assert main(["import-labels", str(export), "--data_root", str(root), "--overwrite"]) == 0
    assert _actions(done.path) == rec.labels["action"]
    # events past the video's end, another frame rate, another subject, a STOP without START
    late = [{**base[-2], "Time": f"{_secs(t, len(t)) + 5:.3f}"}, {**base[-1], "Time": f"{_secs(t, len(t)) + 9:.3f}"}]
    with pytest.raises(DataError, match=r"1 event\(s\) reach past the video's end \(278 frames"):
        run(base + late, overwrite=True)
    with pytest.raises(DataError, match="the file says 30 frames/s, the video has 25"):
        run([{**r, "FPS": "30.000"} for r in base], overwrite=True)
    with pytest.raises(DataError, match="2 subjects \\('mouse', 'rat'\\).*--subject"):
        run(base + _boris_tabular(rec, t, "rat"), overwrite=True)
    (done,) = run(base + _boris_tabular(rec, t, "rat")[:2], subject="mouse", overwrite=True)
    with pytest.raises(DataError, match=r"1 START/STOP row\(s\) without their partner \(lines \[2\]\)"):
        run(base[:1] + base[2:], overwrite=True)
    with pytest.raises(DataError, match=r"1 of its 1 video\(s\) are not in .*first: '/x/nosuch.mp4'"):
        run([{**r, "Media file name": "/x/nosuch.mp4"} for r in base], overwrite=True)


def test_cvat_unknown_labels_and_frame_count_mismatch(demo, root, tmp_path):
    records, _ = demo
    rec = records[0]
    xml = _cvat_xml(rec).replace(f"<size>{rec.num_frames}</size>", f"<size>{rec.num_frames + 40}</size>")
    xml = xml.replace("<label><name>", "<label><name>x", 1)  # one label missing from the task's list
    (tmp_path / "a.xml").write_text(xml)
    with pytest.raises(DataError) as e:
        import_labels([tmp_path / "a.xml"], root)
    msg = str(e.value)
    assert f"the file counts {rec.num_frames + 40} frames, the video has {rec.num_frames}" in msg
    assert "track(s) with labels not in the task's label list" in msg


def test_help_names_the_formats(capsys):
    """(Every flag of every command is in the generated command-line reference: tests/test_docs.py.)"""
    assert main(["import-labels", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in ("BORIS", "ELAN", "CVAT for video 1.1", "segment JSON"))


def test_boris_export_of_older_versions_with_metadata_lines(demo, root, tmp_path):
    """BORIS < 8: observation metadata above the table, `Status` and `Media file path` columns."""
    records, times = demo
    rec = records[3]
    rows = [{"Time": r["Time"], "Media file path": r["Media file name"], "Total length": "11.120", "FPS": r["FPS"],
             "Subject": "", "Behavior": r["Behavior"], "Behavioral category": "", "Comment": "",
             "Status": r["Behavior type"]} for r in _boris_tabular(rec, times[rec.stem], subject="")]
    export = tmp_path / "old.tsv"
    export.write_text("Observation id\tobs1\n\nMedia file(s)\n\nPlayer #1\t/data/x.mp4\n\n"
                      + pd.DataFrame(rows).to_csv(sep="\t", index=False))
    (done,) = import_labels([export], root, video=rec.stem)
    assert _actions(done.path) == rec.labels["action"]
    bad = export.read_text().replace("\tSTOP\n", "\tSTPO\n", 1)
    export.write_text(bad)
    first_bad = bad.splitlines().index(next(l for l in bad.splitlines() if l.endswith("STPO"))) + 1
    with pytest.raises(DataError, match=rf"line {first_bad}: 1 row\(s\) without a number in Time"):
        import_labels([export], root, video=rec.stem, overwrite=True)


def test_cvat_frame_step_and_image_exports_are_refused(demo, root, tmp_path):
    rec = demo[0][0]
    (tmp_path / "step.xml").write_text(_cvat_xml(rec).replace("<frame_filter></frame_filter>",
                                                              "<frame_filter>step=2</frame_filter>"))
    with pytest.raises(DataError, match="frame_filter 'step=2': its frames are not the video's"):
        import_labels([tmp_path / "step.xml"], root)
    (tmp_path / "img.xml").write_text('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
                                      '<image id="0" name="frame_000000.png" width="64" height="64"><box label="a" '
                                      'occluded="0" xtl="1" ytl="1" xbr="9" ybr="9"/></image></annotations>')
    with pytest.raises(DataError, match="a `CVAT for images` export"):
        import_labels([tmp_path / "img.xml"], root, video=rec.stem)
