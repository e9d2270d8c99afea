"""Submission code runs in worker processes (sandbox=process) or in a bubblewrap sandbox
(sandbox=bwrap) that hold no label they may not see: the attack suite of tests/attacks.py."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from attacks import CARRIED, CHILD_MARK, mount_points, page_residency, shared_folders
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score
from tiny_runs import model_config

from benchmark.api.submission import FitContext, SubmissionError
from benchmark.data import layout
from benchmark.evaluation.protocol import run_protocol
from benchmark.records.record_format import PROJECT_ROOT
from benchmark.runner.run import DataChangedError, run
from benchmark.runner.run_folder import RECORD
from benchmark.sandbox import bwrap, page_cache, replies
from benchmark.sandbox.isolation import IsolatedSubmission, LimitExceeded, Limits, isolated_models
from benchmark.sandbox.zygote import Zygote, ZygoteError

CHANCE = {"mdacc": 0.5, "pembro_rt_cv": 0.5}
EXPOSED = {"mdacc": 1.0, "pembro_rt_cv": 1.0}


@pytest.fixture(scope="module")
def mounts(cache_dir: Path, tiny_root: Path, tmp_path_factory) -> bwrap.Mounts:
    """What a run on the tiny cohorts would show its sandbox: the views, not the data."""
    if not bwrap.available():
        pytest.fail(
            'bubblewrap cannot run here: install the Debian package (README, "Two commands")'
        )
    return bwrap.Mounts.for_run(
        cache_dir=cache_dir,
        data_root=tiny_root,
        views=cache_dir / "views",
        submission_cache=None,
        project_root=PROJECT_ROOT,
    )


def _external_auc(
    tiny_cohorts, target: str, sandbox: str, mounts=None, artefact_dir=None, **params
) -> dict[str, float]:
    """AUC per predicted cohort key of the attack ``target`` run through the protocol."""
    config = {"_target_": f"attacks.{target}", **params}
    with isolated_models(target, config, 0, sandbox, mounts=mounts) as make_model:
        predictions, _ = run_protocol(
            make_model,
            target,
            ("pembro_rt", tiny_cohorts["pembro_rt"]),
            {"mdacc": tiny_cohorts["mdacc"].cohort},
            ("lesion_pd",),
            n_splits=3,
            fold_seed=0,
            run_context=FitContext(artefact_dir=artefact_dir),
        )
    labels = pd.concat([c.outcomes.lesion_pd for c in tiny_cohorts.values()])
    return {
        key: roc_auc_score(labels.loc[group["id"]], group["prediction"])
        for key, group in predictions.groupby("cohort")
    }


ISOLATED = ["process", "bwrap"]


def _mounts_for(sandbox: str, request) -> bwrap.Mounts | None:
    return request.getfixturevalue("mounts") if sandbox == "bwrap" else None


@pytest.mark.parametrize("attack", ["StackWalker", "ObjectScanner"])
def test_label_hunting_in_memory_succeeds_in_process_and_fails_in_a_worker(tiny_cohorts, attack):
    """(a), (b): without isolation the attack reads the predicted cohort's labels (AUC 1.0 on
    every cohort); in a worker it finds none and its constant prediction ranks at chance."""
    assert _external_auc(tiny_cohorts, attack, "none") == EXPOSED
    assert _external_auc(tiny_cohorts, attack, "process") == CHANCE


def test_memory_attacks_find_nothing_in_the_sandbox_either(tiny_cohorts, mounts):
    for attack in ("StackWalker", "ObjectScanner", "Hoarder"):
        assert _external_auc(tiny_cohorts, attack, "bwrap", mounts) == CHANCE, attack


def test_a_file_search_from_the_inputs_finds_the_tables_unless_sandboxed(tiny_cohorts, mounts):
    """(c): the views hold no table, but the cached dataset lies a few folders above them."""
    assert _external_auc(tiny_cohorts, "FileSearcher", "process") == EXPOSED
    assert _external_auc(tiny_cohorts, "FileSearcher", "bwrap", mounts) == CHANCE


def test_the_sandbox_keeps_no_capability_to_unmount_what_hides_the_data(tiny_cohorts, mounts):
    """(c'): here the cache's parent folder is shown, as the project folder holding `.cache`
    is in a run; unmounting the tmpfs over the cache would reveal the tables."""
    cache = mounts.hidden[0]
    shown = {cache, *mounts.writable}
    others = tuple(
        p for p in cache.parent.iterdir() if p.is_dir() and not p.is_symlink() and p not in shown
    )
    exposing = dataclasses.replace(  # hiding the copies of the data other tests made there
        mounts, hidden=(*mounts.hidden, *others), read_only=(*mounts.read_only, cache.parent)
    )
    assert _external_auc(tiny_cohorts, "Unmounter", "bwrap", exposing) == CHANCE


def test_a_network_connection_is_made_only_outside_the_sandbox(tiny_cohorts, mounts):
    """(e): an accomplice listens on this machine; the sandbox has no network to reach it."""
    with socket.create_server(("127.0.0.1", 0)) as accomplice:
        accomplice.settimeout(0.5)
        port = accomplice.getsockname()[1]
        _external_auc(tiny_cohorts, "NetworkCaller", "bwrap", mounts, port=port)
        with pytest.raises(TimeoutError):
            accomplice.accept()
        _external_auc(tiny_cohorts, "NetworkCaller", "process", port=port)
        conn, _ = accomplice.accept()
        with conn:
            assert conn.recv(64) == b"labels please"


def test_environments_show_the_data_only_outside_the_sandbox(tiny_cohorts, mounts, cache_dir):
    """(f): the worker's own environment is cleared in both modes, but without a process
    namespace a worker reads any process's environment, here one that names the data."""
    with subprocess.Popen(["sleep", "60"], env={"NSCLC_IO_BENCH_CACHE": str(cache_dir)}) as other:
        try:
            assert _external_auc(tiny_cohorts, "EnvironmentReader", "bwrap", mounts) == CHANCE
            assert _external_auc(tiny_cohorts, "EnvironmentReader", "process") == EXPOSED
        finally:
            other.kill()


@pytest.mark.parametrize("sandbox", ISOLATED)
def test_a_worker_that_dies_fails_the_run_naming_model_and_step(tiny_cohorts, sandbox, request):
    with pytest.raises(SubmissionError, match=r"Crashes: its worker process ended during predict"):
        _external_auc(tiny_cohorts, "Crashes", sandbox, _mounts_for(sandbox, request))


@pytest.mark.parametrize("sandbox", ISOLATED)
@pytest.mark.parametrize(("target", "kind"), [("Raises", KeyError), ("RaisesOSError", OSError)])
def test_an_exception_in_a_worker_keeps_its_type_and_says_where(
    tiny_cohorts, sandbox, request, target, kind
):
    """A model's exception comes back as itself, an OSError too (it once read as the end of the
    worker's process)."""
    with pytest.raises(kind, match="a bug in the submission") as info:
        _external_auc(tiny_cohorts, target, sandbox, _mounts_for(sandbox, request))
    assert any("worker process" in note for note in info.value.__notes__)


def test_isolated_and_in_process_runs_give_the_same_predictions(tiny_cohorts, mounts):
    """A real model (the clinical Cox baseline) predicts the same, to the bit, in every mode."""
    config = {"_target_": "baselines.cox_clinical.ClinicalCox"}
    runs = []
    for sandbox in ("none", "process", "bwrap"):
        with isolated_models("cox_clinical", config, 0, sandbox, mounts=mounts) as make_model:
            predictions, _ = run_protocol(
                make_model,
                "cox_clinical",
                ("pembro_rt", tiny_cohorts["pembro_rt"]),
                {"nivorad": tiny_cohorts["nivorad"].cohort, "mdacc": tiny_cohorts["mdacc"].cohort},
                ("os", "pfs"),
                n_splits=3,
                fold_seed=0,
            )
        runs.append(predictions)
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)
    pd.testing.assert_frame_equal(runs[0], runs[2], check_exact=True)


def test_an_unknown_sandbox_is_refused():
    with (
        pytest.raises(ValueError, match="sandbox must be one of"),
        isolated_models("m", {"_target_": "attacks.Raises"}, 0, "docker"),
    ):
        pass


def test_labels_kept_from_one_fold_do_not_reach_another_folds_predict(tiny_cohorts):
    """In one process, fold 0's fit holds the labels of folds 1-2, which a model can keep and
    replay; a new worker per fit has only its own training labels."""
    exposed = _external_auc(tiny_cohorts, "Hoarder", "none")
    assert exposed["pembro_rt_cv"] > 0.75 and exposed["mdacc"] == 0.5
    assert _external_auc(tiny_cohorts, "Hoarder", "process") == CHANCE


@pytest.fixture
def new_tag():
    """``new_tag()``: a tag for TmpCarrier or Lingerer; what they left here goes after the test."""
    tags: list[str] = []

    def new() -> str:
        tags.append(uuid.uuid4().hex[:12])
        return tags[-1]

    yield new
    for marker in (f"{CARRIED}-{tag}" for tag in tags):
        for folder in dict.fromkeys([*shared_folders(), *mount_points()]):
            for path in Path(folder).glob(f"{marker}-*"):
                path.unlink(missing_ok=True)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError, ValueError):
                if marker in cmdline.read_bytes().decode().split("\0"):
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)


@pytest.mark.parametrize("attack", ["TmpCarrier", "Lingerer"])
def test_labels_left_behind_reach_a_later_fold_only_outside_the_sandbox(
    tiny_cohorts, mounts, new_tag, attack
):
    """(g), (h): fold 0's fit gets the labels of folds 1-2. Left in a file in /tmp (or $TMPDIR,
    /dev/shm, ...) or in the command line of a process that outlives its worker, they reach
    later folds' predicts where workers share the machine (``process`` is no sandbox). In the
    sandbox each worker has a /tmp of its own, and no process outlives its worker's successor."""
    for sandbox in ("none", "process"):
        exposed = _external_auc(tiny_cohorts, attack, sandbox, tag=new_tag())
        assert exposed["pembro_rt_cv"] > 0.75 and exposed["mdacc"] == 0.5, sandbox
    assert _external_auc(tiny_cohorts, attack, "bwrap", mounts, tag=new_tag()) == CHANCE


def test_labels_left_in_writable_folders_reach_a_later_fold_only_outside_the_sandbox(
    tiny_cohorts, mounts, new_tag, tmp_path
):
    """(i): each fit leaves its labels wherever it can write: its declared cache, the run's
    artefact folders and every mount it sees. Without a sandbox a later fold reads them back.
    In the sandbox the cache is writable only while the cohorts are prepared (no outcome
    there), artefacts come back through a pipe into the run's folder, and the tmpfs over
    hidden folders is read-only."""
    cache, tag = tmp_path / "cache", new_tag()
    cache.mkdir()
    exposed = _external_auc(
        tiny_cohorts, "MountCarrier", "process", None, tmp_path / "a", cache_dir=str(cache), tag=tag
    )
    assert exposed["pembro_rt_cv"] > 0.75 and exposed["mdacc"] == 0.5
    carried = f"{CARRIED}-{tag}-*.json"
    assert list(cache.glob(carried)) and list((tmp_path / "a").glob(f"*/{carried}"))

    cache, tag = tmp_path / "sandboxed-cache", new_tag()
    cache.mkdir()
    sandboxed = dataclasses.replace(mounts, writable=(cache,))
    artefacts = tmp_path / "b"
    auc = _external_auc(
        tiny_cohorts, "MountCarrier", "bwrap", sandboxed, artefacts, cache_dir=str(cache), tag=tag
    )
    assert auc == CHANCE
    assert [p.name for p in cache.iterdir()] == [f"{CARRIED}-{tag}-prepared"]
    kept = sorted(p.parent.name for p in artefacts.glob(f"*/{CARRIED}-{tag}-*.json"))
    assert kept == ["final", "fold0", "fold1", "fold2"]  # what a fit saved, through the pipe


@pytest.mark.parametrize("sandbox", ISOLATED)
def test_a_forged_reply_runs_no_code_in_the_harness(tiny_cohorts, sandbox, request):
    """(j): a pickle written on the worker's pipe would run its code in the process that holds
    the labels (there it reads them: AUC 1.0); replies are JSON, so the run fails instead."""
    with pytest.raises(
        SubmissionError,
        match=r"ReplyForger: its worker sent, during predict, a "
        r"reply that is not the harness's JSON",
    ):
        _external_auc(tiny_cohorts, "ReplyForger", sandbox, _mounts_for(sandbox, request))


@pytest.mark.parametrize("sandbox", ISOLATED)
def test_a_preparing_model_cannot_poison_the_harness_features(
    tiny_cohorts, mounts, tmp_path, sandbox
):
    """(k): the harness's feature folders (``<cache>/<extractor key>``, filled by the harness)
    are read-only in the sandbox, also while the model prepares and writes its own cache."""
    cache = tmp_path / "radiomics"
    shared = cache / "harness-key"
    shared.mkdir(parents=True)
    (shared / "patient.json").write_text('{"good": true}')
    sandboxed = dataclasses.replace(
        mounts, writable=(cache,), read_only=(*mounts.read_only, shared)
    )
    _external_auc(
        tiny_cohorts,
        "Poisoner",
        sandbox,
        sandboxed if sandbox == "bwrap" else None,
        cache_dir=str(cache),
        shared_dir=str(shared),
    )
    assert (cache / "own.json").exists()
    poisoned = (shared / "patient.json").read_text() != '{"good": true}'
    assert poisoned == (sandbox == "process")  # process is no sandbox: it writes anywhere
    assert (shared / "added.json").exists() == (sandbox == "process")


def test_a_hidden_folder_that_does_not_exist_yet_is_still_covered(tmp_path):
    """A fresh clone has no cache when its sandbox starts; the run then writes the data there,
    under the project folder the sandbox shows, unless the cache is covered from the start."""
    project = tmp_path / "project"
    project.mkdir()
    mounts = bwrap.Mounts.for_run(
        cache_dir=project / ".cache",
        data_root=None,
        views=project / ".cache" / "views",
        submission_cache=None,
        project_root=project,
    )
    args = bwrap.command(mounts, ["true"])
    cache = str((project / ".cache").resolve())
    assert (project / ".cache").is_dir()
    assert ["--tmpfs", cache] == args[args.index(cache) - 1 : args.index(cache) + 1]
    assert args[args.index("--remount-ro", args.index(cache)) + 1 :].count(cache) == 1


def test_a_model_cache_that_would_show_the_data_is_refused(cache_dir, tiny_root):
    """A config's ``cache_dir`` is mounted into the sandbox: never the cache root, the data, or
    the harness's datasets and views inside the cache."""
    for bad in (cache_dir, cache_dir / "data" / "x", cache_dir / "views", tiny_root, PROJECT_ROOT):
        with pytest.raises(ValueError, match="would show"):
            bwrap.Mounts.for_run(
                cache_dir=cache_dir,
                data_root=tiny_root,
                views=cache_dir / "views",
                submission_cache=bad,
                project_root=PROJECT_ROOT,
            )
    own = cache_dir / "radiomics"
    ok = bwrap.Mounts.for_run(
        cache_dir=cache_dir,
        data_root=tiny_root,
        views=cache_dir / "views",
        submission_cache=own,
        project_root=PROJECT_ROOT,
    )
    assert ok.writable == (own.resolve(),)


def test_a_sandboxed_worker_holds_no_capability(tiny_cohorts, mounts):
    """What (c') and (g) rest on: in a user namespace of its own a worker would hold every
    capability, enough to unmount its own /tmp and reach the one all workers share."""
    with pytest.raises(RuntimeError) as info:
        _external_auc(tiny_cohorts, "Inspector", "bwrap", mounts)
    held = json.loads(str(info.value))
    assert {k: int(v, 16) for k, v in held.items() if k.startswith("Cap")} == dict.fromkeys(
        ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0
    )
    assert held["NoNewPrivs"] == "1"


class _Ended:
    """A worker that has already ended (exit code 1), as the parent sees it."""

    exitcode = 1

    def state(self, memory: bool) -> tuple[bool, None]:
        return False, None

    def stop(self, timeout: float = 2.0) -> None:
        pass


def test_why_a_worker_could_not_start_is_reported_even_when_it_ended_before_the_first_step():
    """The keeper sends its ZygoteError and exits; when that happens before the parent sends the
    first step, the send fails (broken pipe), and the reason must still be what is raised."""

    def start(conn):
        replies.send_error(conn, ZygoteError("a worker could not unshare a user namespace"))
        conn.close()
        return _Ended()

    with pytest.raises(ZygoteError, match="could not unshare a user namespace"):
        IsolatedSubmission("Ended", start)


def test_a_worker_that_ended_without_a_word_is_reported_as_ended():
    def start(conn):
        conn.close()
        return _Ended()

    with pytest.raises(SubmissionError, match=r"Silent: its worker process ended during tasks"):
        IsolatedSubmission("Silent", start)


def test_a_worker_that_cannot_have_a_tmp_of_its_own_does_not_start(
    tiny_cohorts, mounts, monkeypatch
):
    """Where the sandbox allows no further user namespace (bwrap's --disable-userns here), the
    run fails naming why rather than let its workers share /tmp."""
    command = bwrap.command

    def no_userns(mounts: bwrap.Mounts, argv: list[str]) -> list[str]:
        exe, *options = command(mounts, argv)
        return [exe, "--unshare-user", "--disable-userns", *options]

    monkeypatch.setattr(bwrap, "command", no_userns)
    with pytest.raises(ZygoteError, match=r"a worker could not unshare a user namespace"):
        _external_auc(tiny_cohorts, "Raises", "bwrap", mounts)


@pytest.mark.parametrize("sandbox", ISOLATED)
@pytest.mark.parametrize(
    ("target", "limits", "message"),
    [
        ("Sleeper", Limits(step_s=1.0), r"Sleeper: predict went over limits.step_s=1 s"),
        ("Hog", Limits(memory_gib=0.5), r"Hog: predict went over limits.memory_gib=0.5"),
        ("ChildHog", Limits(memory_gib=0.5), r"ChildHog: predict went over limits.memory_gib=0.5"),
    ],
)
def test_a_runaway_step_is_stopped_with_the_limit_named(
    tiny_cohorts, target, limits, message, sandbox, request
):
    config = {"_target_": f"attacks.{target}"}
    mounts = _mounts_for(sandbox, request)
    with isolated_models(target, config, 0, sandbox, limits, mounts) as make_model:
        model = make_model()
        dev = tiny_cohorts["pembro_rt"]
        model.fit(dev.cohort, dev.outcomes)
        clock = time.monotonic()
        with pytest.raises(LimitExceeded, match=message):
            model.predict(tiny_cohorts["mdacc"].cohort)
        assert time.monotonic() - clock < 20  # stopped, not waited for
        assert model._worker is None  # the worker is gone
        assert not _processes_marked(CHILD_MARK)  # and what it started


def _processes_marked(mark: str, wait_s: float = 5.0) -> list[int]:
    """The processes whose command line holds ``mark``, once those being killed are gone."""
    deadline = time.monotonic() + wait_s
    while True:
        marked = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                if mark.encode() in cmdline.read_bytes():
                    marked.append(int(cmdline.parent.name))
        if not marked or time.monotonic() > deadline:
            return marked
        time.sleep(0.1)


def test_a_sandboxed_worker_can_neither_signal_nor_write_another_process(tiny_cohorts, mounts):
    """(l): the worker runs as the sandbox's server's user. In a process namespace of its own
    it cannot name the server (or anything else) to signal it, and the server is not dumpable,
    so its memory is closed too. Outside the sandbox the same worker reaches its parent."""
    reach = {}
    for sandbox in ISOLATED:
        mounts_here = mounts if sandbox == "bwrap" else None
        with pytest.raises(RuntimeError) as info:
            _external_auc(tiny_cohorts, "Signaller", sandbox, mounts_here)
        reach[sandbox] = json.loads(str(info.value))
    assert reach["bwrap"] == {"signal": [], "memory": []}
    assert os.getpid() in reach["process"]["signal"]  # process is no sandbox


def test_a_worker_that_stops_every_process_it_sees_is_still_stopped_at_its_limit(
    tiny_cohorts, mounts
):
    """(l'): stopping the server would block the parent's memory and time checks (3 GiB held
    for 35 s under a 1 GiB limit, before workers had a process namespace of their own); the
    worker's SIGSTOPs reach nothing, and its /tmp files (which no rlimit sees) are caught by the
    parent's polling. The sandbox then serves the next model."""
    limits = Limits(step_s=30.0, memory_gib=1.0)
    config = {"_target_": "attacks.Staller"}
    with isolated_models("Staller", config, 0, "bwrap", limits, mounts) as make_model:
        model = make_model()
        model.fit(tiny_cohorts["pembro_rt"].cohort, tiny_cohorts["pembro_rt"].outcomes)
        clock = time.monotonic()
        with pytest.raises(LimitExceeded, match=r"Staller: predict went over limits.memory_gib=1"):
            model.predict(tiny_cohorts["mdacc"].cohort)
        assert time.monotonic() - clock < 25
        assert make_model().tasks == ("lesion_pd",)  # the server still answers


def test_a_worker_cannot_start_more_processes_than_its_limit(tiny_cohorts, mounts):
    """The kernel counts a sandboxed worker's processes and threads (RLIMIT_NPROC in a user
    namespace of its own); a thread bomb is refused and the run fails naming the limit."""
    limits = Limits(processes=64)
    config = {"_target_": "attacks.ThreadBomb"}
    with isolated_models("ThreadBomb", config, 0, "bwrap", limits, mounts) as make_model:
        model = make_model()
        model.fit(tiny_cohorts["pembro_rt"].cohort, tiny_cohorts["pembro_rt"].outcomes)
        with pytest.raises(
            LimitExceeded, match=r"ThreadBomb: predict went over limits.processes=64"
        ):
            model.predict(tiny_cohorts["mdacc"].cohort)


def test_files_in_a_workers_own_tmp_count_against_its_memory(tiny_cohorts, mounts):
    """In the sandbox a worker's /tmp is RAM (a tmpfs of its own), so its files are memory."""
    limits = Limits(memory_gib=0.5)
    with isolated_models("TmpHog", {"_target_": "attacks.TmpHog"}, 0, "bwrap", limits, mounts) as (
        make_model
    ):
        model = make_model()
        model.fit(tiny_cohorts["pembro_rt"].cohort, tiny_cohorts["pembro_rt"].outcomes)
        with pytest.raises(
            LimitExceeded, match=r"TmpHog: predict went over limits.memory_gib=0.5 \(it held"
        ):
            model.predict(tiny_cohorts["mdacc"].cohort)


@pytest.mark.parametrize("sandbox", ISOLATED)
def test_a_write_to_an_input_image_is_refused_or_fails_the_run(tiny_root, tmp_path, sandbox):
    """(d): the views are hard links to the data. In the sandbox they are read-only; without
    it the write goes through (its mtime put back), and the run fails with no record."""
    cache = tmp_path / "cache"  # a private copy: this attack damages the data it reaches
    shutil.copytree(tiny_root, cache / "data" / tiny_root.name)
    root = cache / "data" / tiny_root.name
    before = layout.scan(root).fingerprint
    cfg = model_config("cox_clinical", cache, f"sandbox={sandbox}")
    cfg.model.submission = OmegaConf.create({"_target_": "attacks.ImageWriter"})
    out = tmp_path / "run"
    if sandbox == "process":
        with pytest.raises(DataChangedError, match=r"the data changed during the run \(.*\.nii"):
            run(cfg, out)
        assert not (out / RECORD).exists()
    else:
        assert run(cfg, out).record["provenance"]["data_fingerprint"] == before
        assert layout.scan(root).fingerprint == before  # read again, uncached


@pytest.mark.parametrize(
    ("data_seed", "auc"),
    [pytest.param(23, 1.0, marks=pytest.mark.slow, id="small-seed"), (8_812_345_671, 0.5)],
)
def test_a_worker_learns_a_draw_only_by_searching_small_seeds(cache_dir, tmp_path, data_seed, auc):
    """(m): a draw's labels follow from its seed, so the worker must not learn the seed. It
    finds nothing that names it (config, fit context, environment, processes, paths; the run
    folder is named by the seed, as a fresh draw's is), so only a search can find it: a small
    seed (23) is found by simulating the tables and matching ages (AUC 1.0 on every cohort,
    external too); a large private seed is not (chance). Before the harness withheld the run's
    folder from a fit, ``data-seed<K>`` in the artefact path gave any seed away."""
    cfg = model_config("cox_clinical", cache_dir, f"data.seed={data_seed}")
    cfg.model.submission = OmegaConf.create({"_target_": "attacks.DrawFinder", "profile": "tiny"})
    out = tmp_path / "fresh" / "tiny" / f"data-seed{data_seed}" / "DrawFinder"
    record = run(cfg, out).record
    found = {key: m["lesion_pd"]["auc"]["value"] for key, m in record["metrics"].items()}
    assert found == dict.fromkeys(("pembro_rt_cv", "nivorad", "mdacc"), auc)


def test_a_sandbox_closed_before_its_server_answers_ends_quietly(
    capfd: pytest.CaptureFixture,
) -> None:
    """A run that ends before its first request (a reused record, a cohort that fails its
    checks) closes the server while it is still answering the preload; the server has no one left
    to tell and exits without a traceback."""
    zygote = Zygote(lambda argv: argv, preload=["json"])
    process = zygote._process
    zygote.close()
    err = capfd.readouterr().err
    assert process.returncode == 0, err
    assert "Traceback" not in err


def _start_uncached(path: Path) -> None:
    """Evict a just-written file; pages still in a CPU's LRU batch survive one DONTNEED, and a
    page left cached would read as a label (a flaky test, not a leak), so it is asked again."""
    for _ in range(20):
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        if sum(page_residency(path)) == 0:
            return
        time.sleep(0.1)
    left = sum(page_residency(path))
    pytest.fail(f"{path}: {left} pages stay cached; the test needs it uncached")


def test_the_page_cache_carries_no_label_from_one_worker_to_the_next(
    tiny_cohorts, mounts, monkeypatch, tmp_path
):
    """(n): a fit reads one of two pages per training lesion of a large read-only file (here one
    of the test's own, which nothing else reads), a later fold's predict asks which are cached.
    The harness drops the page cache before every worker where it may (root): the predict finds
    nothing (chance). Where it may not, the channel stays open, as docs/isolation.md says."""
    folder = tmp_path / "pages"
    folder.mkdir()
    big = folder / "library.so"
    with big.open("wb") as handle:
        handle.write(os.urandom(32 * 2**20))
        handle.flush()
        os.fsync(handle.fileno())
    _start_uncached(big)
    shown = dataclasses.replace(mounts, read_only=(*mounts.read_only, folder))
    found = _external_auc(tiny_cohorts, "PageCacheCarrier", "bwrap", shown, path=str(big))
    if page_cache.can_evict():
        assert found == CHANCE
    else:
        assert found["pembro_rt_cv"] > 0.9


@pytest.mark.slow
def test_the_page_cache_carries_labels_when_it_is_not_dropped(
    tiny_cohorts, mounts, monkeypatch, tmp_path
):
    """(n), the control: without the drop, the same attack reads the CV labels back."""
    folder = tmp_path / "pages"
    folder.mkdir()
    big = folder / "library.so"
    big.write_bytes(os.urandom(32 * 2**20))
    os.sync()
    shown = dataclasses.replace(mounts, read_only=(*mounts.read_only, folder))
    monkeypatch.setattr(page_cache, "evict", lambda: None)
    _start_uncached(big)
    kept = _external_auc(tiny_cohorts, "PageCacheCarrier", "bwrap", shown, path=str(big))
    assert kept["pembro_rt_cv"] > 0.9 and kept["mdacc"] == 0.5


@pytest.mark.parametrize("sandbox", ISOLATED)
def test_a_reply_longer_than_a_valid_one_is_refused_before_it_is_read(
    tiny_cohorts, sandbox, request
):
    """(o): a predict reply is at most what the cohort's ids and tasks need (kilobytes here), so
    a 200 MB one is refused from its length, before the harness reads it into memory."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        SubmissionError,
        match=r"FloodReply: its worker sent, during predict, a reply of over \d+ bytes",
    ):
        _external_auc(tiny_cohorts, "FloodReply", sandbox, _mounts_for(sandbox, request))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


@pytest.mark.parametrize("sandbox", ISOLATED)
def test_a_submissions_module_is_imported_by_each_worker_not_by_the_server(
    tiny_cohorts, sandbox, request, monkeypatch
):
    """(p): the server that forks the workers imported the model's module first, so its
    import-time state (a shared memory map) was every worker's: a fit left its labels there for
    a later fold (CV AUC > 0.9 in the sandbox, whose server starts with each run; the process
    mode's forkserver lives as long as the harness and keeps its first preload). The server
    imports the harness's and installed libraries' modules only."""
    import benchmark.sandbox.isolation as isolation

    mounts = _mounts_for(sandbox, request)
    assert _external_auc(tiny_cohorts, "SharedMapCarrier", sandbox, mounts) == CHANCE
    if sandbox == "bwrap":
        monkeypatch.setattr(isolation, "preloadable", lambda module: True)
        exposed = _external_auc(tiny_cohorts, "SharedMapCarrier", sandbox, mounts)
        assert exposed["pembro_rt_cv"] > 0.9 and exposed["mdacc"] == 0.5
