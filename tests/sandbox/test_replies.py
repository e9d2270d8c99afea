"""A worker's replies reach its parent as JSON: exact numbers, rebuilt errors, nothing run."""

from __future__ import annotations

import io
import math
import multiprocessing
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.api.submission import SubmissionError
from benchmark.sandbox import replies
from benchmark.sandbox.isolation import unpack_artefacts
from benchmark.sandbox.worker import pack_artefacts


@pytest.fixture
def pipe():
    ours, theirs = multiprocessing.Pipe()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_predictions_come_back_to_the_last_bit(pipe):
    ours, theirs = pipe
    values = np.random.default_rng(0).random(500) ** 7  # many digits, tiny and large
    values[:3] = [np.nan, np.inf, 5e-324]
    sent = {"lesion_pd": pd.Series(values, index=[f"L{i}" for i in range(500)])}
    replies.send_ok(theirs, "predict", sent)
    got = replies.receive(ours)["lesion_pd"]
    assert list(got.index) == list(sent["lesion_pd"].index)
    back = got.to_numpy(dtype=float)
    assert math.isnan(back[0]) and back[1] == math.inf
    assert back[2:].tobytes() == values[2:].tobytes()


def test_what_is_not_a_mapping_of_series_keeps_its_type_name(pipe):
    ours, theirs = pipe
    replies.send_ok(theirs, "predict", [0.5])
    assert type(replies.receive(ours)).__name__ == "list"
    replies.send_ok(theirs, "predict", {"lesion_pd": np.zeros(3)})
    assert type(replies.receive(ours)["lesion_pd"]).__name__ == "ndarray"


def test_artefacts_and_tasks(pipe):
    ours, theirs = pipe
    replies.send_ok(theirs, "save_artefacts", b"\x00tar bytes")
    assert replies.receive(ours) == b"\x00tar bytes"
    replies.send_ok(theirs, "tasks", ("lesion_pd", "os"))
    assert replies.receive(ours) == ("lesion_pd", "os")
    replies.send_ok(theirs, "fit", None)
    assert replies.receive(ours) is None


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (KeyError("a bug"), KeyError),
        (SubmissionError("m: ids missing"), SubmissionError),
        (type("Custom", (Exception,), {})("their own"), RuntimeError),
    ],
)
def test_an_error_is_rebuilt_only_for_builtin_and_harness_types(pipe, raised, expected):
    ours, theirs = pipe
    raised.add_note("where it happened")
    replies.send_error(theirs, raised)
    with pytest.raises(expected) as info:
        replies.receive(ours)
    assert type(info.value) is expected
    assert info.value.__notes__ == ["where it happened"]
    if expected is RuntimeError:
        assert "Custom: their own" in str(info.value)


def test_a_pickle_on_the_pipe_is_refused_not_run(pipe):
    ours, theirs = pipe

    class Runs:
        def __reduce__(self):
            return (pytest.fail, ("unpickled in the parent",))

    theirs.send(("ok", Runs()))  # what multiprocessing's send writes: a pickle
    with pytest.raises(replies.ReplyError, match="not the harness's JSON"):
        replies.receive(ours)
    theirs.send_bytes(pickle.dumps([1]))
    with pytest.raises(replies.ReplyError):
        replies.receive(ours)


def test_artefacts_with_a_link_are_refused_before_anything_is_written(tmp_path):
    """The worker may send any tar: a link (even one inside the folder) writes nothing."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as tar:
        weights = tarfile.TarInfo("weights.pt")
        weights.size = 3
        tar.addfile(weights, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("latest.pt")
        link.type, link.linkname = tarfile.SYMTYPE, "weights.pt"
        tar.addfile(link)
    with pytest.raises(SubmissionError, match="artefact latest.pt: an artefact must be a plain"):
        unpack_artefacts(stream.getvalue(), tmp_path / "fold0")
    assert not (tmp_path / "fold0").exists()
    with pytest.raises(SubmissionError, match="refused"):
        unpack_artefacts(b"not a tar", tmp_path / "fold1")


def test_a_link_a_model_saves_reaches_the_parent_as_a_link_and_is_refused(tmp_path):
    class SavesALink:
        def save_artefacts(self, folder: Path) -> None:
            (folder / "curves").mkdir()
            (folder / "curves" / "loss.csv").write_text("epoch,loss\n")
            (folder / "curves" / "latest").symlink_to("/etc/passwd")

    data = pack_artefacts(SavesALink())
    with pytest.raises(SubmissionError, match="artefact curves/latest: an artefact must be"):
        unpack_artefacts(data, tmp_path / "final")
    assert not (tmp_path / "final").exists()
