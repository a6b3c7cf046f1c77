"""kit.data.mstcn: the layout of MS-TCN and its successors."""
from __future__ import annotations

import pytest

from kit.data import DataError
from kit.data.mstcn import RESULT_HEADER, read_result, write_result


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
