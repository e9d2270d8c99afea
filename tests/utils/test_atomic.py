"""benchmark.utils.atomic.write_atomic: all or nothing, and readable by whoever shares the
folder."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from benchmark.utils.atomic import write_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_text_bytes_and_writer_functions(tmp_path):
    write_atomic(tmp_path / "a" / "t.txt", "µ text\n")
    assert (tmp_path / "a" / "t.txt").read_bytes() == "µ text\n".encode()
    write_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    write_atomic(tmp_path / "c.npz", lambda fh: np.savez(fh, x=np.arange(3)))
    with np.load(tmp_path / "c.npz") as npz:
        assert npz["x"].tolist() == [0, 1, 2]


def test_mode_is_that_of_a_plain_open_not_mkstemps_0600(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    write_atomic(tmp_path / "atomic", "x")
    assert _mode(tmp_path / "atomic") == _mode(plain)


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("old")

    def broken(handle):
        handle.write(b"half a rec")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic(target, broken)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
