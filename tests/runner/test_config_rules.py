"""A submission's config is data (benchmark/runner/config_rules.py), and a model writes only its own
folder (benchmark/sandbox/writable.py): attack classes (1) and (2) of the hostile-pull-request
suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
from omegaconf import OmegaConf
from tiny_runs import CONF, model_config

from benchmark.records.record_format import PROJECT_ROOT
from benchmark.runner.config_rules import (
    SubmissionConfigError,
    check_folders,
    config_problems,
    folder_config_problems,
    interpolation_problems,
)
from benchmark.runner.run import run
from benchmark.sandbox.writable import WritableFolderError, check_declared, own_folder
from hydra_plugins.nsclc_io_bench_submissions import submissions_searchpath

VALID = """\
name: mine
submission:
  _target_: submissions.mine.model.Mine
  features: ${radiomics}
  settings: ${radiomics.settings}
  widths: ${hardware.deep.widths}
  n_jobs: ${hardware.workers}
  ring_dir: ${paths.submission_cache}/rings
"""


def _config(tmp_path: Path, text: str, name: str = "mine") -> Path:
    path = tmp_path / "submissions" / name / "conf" / "model" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_committed_submissions_obey_the_rules():
    check_folders(sorted(p for p in (PROJECT_ROOT / "submissions").iterdir() if p.is_dir()))


def test_a_config_that_only_names_itself_and_offered_values_passes(tmp_path: Path):
    assert config_problems(_config(tmp_path, VALID)) == []


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("# @package _global_\n" + VALID, "@package: a submission's config may not move"),
        (VALID + "defaults: [/train@submission.train: default]\n", "defaults: a defaults list"),
        (VALID + "hydra:\n  callbacks: {}\n", "hydra: Hydra's own settings may not be set"),
        (VALID + "radiomics: {_target_: os.system}\n", "radiomics: not a key a submission may"),
        (VALID.replace("name: mine", "name: other"), "name: must be 'mine'"),
        ("name: mine\nsubmission: {n: 1}\n", "submission: must be a mapping with a _target_"),
        (VALID + "  seed: ${data.seed}\n", "submission.seed: ${data.seed} is not a value"),
        (VALID + "  root: ${paths.cache_dir}\n", "${paths.cache_dir} is not a value"),
        (VALID + "  home: ${oc.env:HOME}\n", "no resolver (oc.env, now, hydra, ...)"),
        (VALID + "  at: ${now:%H}\n", "no resolver"),
        (VALID + "  x: '${oc.env:X,${data.seed}}'\n", "no resolver"),
        (VALID + "  y: ${.n_jobs}\n", "relative key"),
        (VALID + "  z: '\\${data.seed}'\n", "an escaped interpolation"),
        (VALID + "  t: ${hydra:runtime.cwd}\n", "no resolver"),
    ],
)
def test_each_rule_is_named_with_file_and_key(tmp_path: Path, text: str, rule: str):
    path = _config(tmp_path, text)
    problems = config_problems(path)
    assert any(p.startswith(f"{path}: ") and rule in p for p in problems), problems


def test_a_submission_conf_holds_model_configs_only(tmp_path: Path):
    folder = _config(tmp_path, VALID).parents[2]
    (folder / "conf" / "hydra" / "callbacks").mkdir(parents=True)
    (folder / "conf" / "hydra" / "callbacks" / "sweep_summary.yaml").write_text("x: 1\n")
    (folder / "conf" / "model" / "link.yaml").symlink_to(folder / "conf" / "model" / "mine.yaml")
    problems = "\n".join(folder_config_problems(folder))
    assert "sweep_summary.yaml: a submission's conf/ holds model/<name>.yaml only" in problems
    assert "link.yaml: a link" in problems


def test_interpolations_are_checked_one_by_one():
    assert interpolation_problems("${paths.submission_cache}/a/${hardware.deep.epochs}") == []
    assert interpolation_problems("plain text") == []
    assert interpolation_problems("${hardware.deep.widths.0}") != []  # not one level below
    assert interpolation_problems("${crops.cache_dir}") != []  # a harness path


EVIL_MODULE = """\
from pathlib import Path

MARK = Path(__file__).with_name("ran-in-the-parent")


def steal(*args, **kwargs):
    MARK.write_text("the submission's code ran in the harness's process")
    return {}
"""

EVIL_CONFIG = """\
# @package _global_
model:
  name: evil
  submission:
    _target_: submissions.evil.model.Evil
protocol:
  cv: {n_splits: 2}
radiomics:
  _target_: submissions_evil_module.steal
hydra:
  callbacks:
    steal:
      _target_: submissions_evil_module.steal
"""


def test_a_config_that_would_write_the_harness_nodes_is_refused_before_hydra_reads_it(
    tmp_path: Path, monkeypatch
):
    """(1): ``@package _global_`` let a submission's config write any node of the composed
    config: a Hydra callback (or a ``_target_`` in a node the harness builds) ran the
    submission's code in the harness's process, before any sandbox, and the protocol could
    change. Composed as a config of the harness's own (as the search-path plugin added
    submission folders before the rules), both are in the composed config; through the plugin,
    composing stops with file, key and rule named, before Hydra reads the file."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "model" / "evil.yaml").write_text(EVIL_CONFIG)
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        unruled = compose("config", overrides=["model=evil", "data=tiny"], return_hydra_config=True)
    assert unruled.hydra.callbacks.steal._target_ == "submissions_evil_module.steal"
    assert unruled.protocol.cv.n_splits == 2  # the protocol every model is scored by

    folder = tmp_path / "submissions" / "evil"
    _config(tmp_path, EVIL_CONFIG, "evil")
    monkeypatch.setattr(submissions_searchpath, "submission_conf_dirs", lambda: [folder / "conf"])
    search_path = ConfigSearchPathImpl()
    search_path.append("main", f"file://{CONF}")
    with pytest.raises(SubmissionConfigError) as refused:
        submissions_searchpath.SubmissionsSearchPathPlugin().manipulate_search_path(search_path)
    message = str(refused.value)
    config = folder / "conf" / "model" / "evil.yaml"
    assert f"{config}: @package: a submission's config may not move its package" in message
    assert f"{config}: hydra: Hydra's own settings may not be set" in message
    assert f"{config}: radiomics: not a key a submission may set" in message
    assert len(search_path.get_path()) == 1  # nothing added


def test_declared_folders_must_lie_in_the_models_own_folder(tmp_path: Path):
    """(2): every ``*_dir`` of a model's config was mounted writable for its preparing worker:
    ``${paths.cache_dir}/../benchmark``, a folder in ``.venv`` and the shared radiomics cache
    were all written. Now only ``<cache>/submissions/<name>`` is, checked on resolved paths."""
    cache = tmp_path / "cache"
    own = own_folder(cache, "mine", cache / "submissions" / "mine")
    assert own.is_dir()
    harness = {"_target_": "benchmark.features.radiomics.RadiomicsExtractor"}
    harness["cache_dir"] = str(cache / "radiomics")
    check_declared({"features": harness, "ring_dir": str(own / "rings")}, own, [harness])
    (own / "link").symlink_to(PROJECT_ROOT / "benchmark")
    for key, bad in {
        "ring_dir": f"{own}/../../../benchmark",
        "venv_dir": str(PROJECT_ROOT / ".venv" / "x"),
        "cache_dir": str(cache / "radiomics"),  # the shared cache, outside the harness's node
        "link_dir": str(own / "link" / "x"),
    }.items():
        with pytest.raises(WritableFolderError, match=rf"model.submission.{key}="):
            check_declared({key: bad, "features": harness}, own, [harness])
    with pytest.raises(WritableFolderError, match="not the model's own folder"):
        own_folder(cache, "mine", cache / "submissions" / "other")


def test_a_run_whose_config_names_a_harness_folder_is_refused_before_its_code_runs(
    cache_dir: Path, tmp_path: Path
):
    cfg = model_config("peritumoral_radiomics", cache_dir)
    cfg.model.submission.ring_dir = str(PROJECT_ROOT / "benchmark")
    with pytest.raises(WritableFolderError, match=r"model.submission.ring_dir="):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert OmegaConf.select(cfg, "paths.submission_cache").endswith(
        "submissions/peritumoral_radiomics"
    )
