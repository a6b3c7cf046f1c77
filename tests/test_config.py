import json

import pytest

from kit.config import RunConfig, field_help, field_names


def test_json_round_trip(tmp_path):
    cfg = RunConfig(epochs=3, backbone="tiny", lr=5e-4, task_weights={"stance": 0.5}, run_name="r1")
    cfg.save(tmp_path / "config.json")
    back = RunConfig.load(tmp_path / "config.json")
    assert back == cfg
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 3


def test_defaults_match_the_seed():
    cfg = RunConfig()
    assert (cfg.num_frames, cfg.img_size, cfg.train_T, cfg.val_T) == (16, 224, 180, 240)
    assert cfg.uses_demo_data and cfg.resolved_backbone == "tiny"
    assert RunConfig(data_root="/d").resolved_backbone == "auto"
    assert RunConfig(train_T=100).train_stride == 50


def test_unknown_key_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown RunConfig field.*epoch"):
        RunConfig.from_dict({"epoch": 3})
    (tmp_path / "c.json").write_text(json.dumps({"bogus": 1}))
    with pytest.raises(ValueError, match=r"c\.json.*bogus"):
        RunConfig.load(tmp_path / "c.json")


@pytest.mark.parametrize("key,value", [("epochs", "10"), ("epochs", 2.5), ("lr", "0.1"), ("use_pose", 1),
                                       ("batch_size", True), ("data_root", 3), ("task_weights", [1])])
def test_wrong_type_rejected(key, value):
    with pytest.raises(TypeError, match=key):
        RunConfig.from_dict({key: value})


def test_int_accepted_for_float_and_kept_float():
    cfg = RunConfig(lr=1)
    assert isinstance(cfg.lr, float) and cfg.lr == 1.0


@pytest.mark.parametrize("kw", [dict(backbone="resnet"), dict(visual_mode="mean"), dict(epochs=0),
                                dict(val_fraction=1.0), dict(val_fraction=0.6, test_fraction=0.5),
                                dict(lr=0.0)])
def test_bad_values_rejected(kw):
    with pytest.raises(ValueError):
        RunConfig(**kw)


def test_bad_json_names_the_file(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"c\.json"):
        RunConfig.load(tmp_path / "c.json")


def test_every_field_has_help():
    assert set(field_help()) == set(field_names())
