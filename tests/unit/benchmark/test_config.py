"""Benchmark configs: parsing, grid expansion, run identity, packaged configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fusionmedclip_anomalib.benchmark.config import (
    PACKAGED_CONFIGS,
    ConfigError,
    RunSpec,
    load_config,
    packaged_config_path,
    parse_config,
    resolve_config_path,
)

REPO = Path(__file__).resolve().parents[3]


def _config(**overrides: object) -> dict:
    data = {
        "name": "t",
        "k_shots": [4, 16],
        "seeds": [0, 1],
        "weights": "random",
        "models": [
            {"name": "A", "class_path": "pkg.A", "init_args": {"x": 1}},
            {"name": "B", "class_path": "pkg.B"},
        ],
        "datasets": [{"name": "D", "class_path": "pkg.D", "init_args": {"modality": "brain"}}],
    }
    data.update(overrides)
    return data


def test_grid_expands_models_fastest_with_unique_ids() -> None:
    runs = parse_config(_config()).runs()
    assert len(runs) == 2 * 2 * 2
    assert [r.model.name for r in runs[:2]] == ["A", "B"]
    assert [(r.k_shot, r.seed) for r in runs[::2]] == [(4, 0), (4, 1), (16, 0), (16, 1)]
    assert len({r.run_id for r in runs}) == len(runs)
    assert runs[0].run_id == "A__D__k4__s0__random"
    assert runs[0].support_id == runs[1].support_id == "D__k4__s0"


def test_spec_hash_is_stable_and_tracks_every_setting() -> None:
    first = parse_config(_config()).runs()[0]
    again = parse_config(_config()).runs()[0]
    assert first.spec_hash == again.spec_hash
    changed = parse_config(
        _config(
            models=[{"name": "A", "class_path": "pkg.A", "init_args": {"x": 2}}, {"name": "B", "class_path": "pkg.B"}]
        )
    ).runs()[0]
    assert changed.run_id == first.run_id and changed.spec_hash != first.spec_hash
    other_eval = parse_config(_config(evaluation={"image_size": 256})).runs()[0]
    assert other_eval.spec_hash != first.spec_hash


def test_spec_round_trips_through_plain_data() -> None:
    spec = parse_config(_config(trainer={"max_epochs": 2})).runs()[3]
    assert RunSpec.from_dict(spec.to_dict()) == spec


def test_weights_grid_and_per_model_override() -> None:
    data = _config(weights=["pretrained", "random"])
    data["models"][1]["weights"] = "none"
    runs = parse_config(data).runs()
    a_runs = [r for r in runs if r.model.name == "A"]
    b_runs = [r for r in runs if r.model.name == "B"]
    assert {r.weights for r in a_runs} == {"pretrained", "random"}
    assert {r.weights for r in b_runs} == {"none"}
    assert len(b_runs) == 4  # once per (k, seed), not once per grid weights value


def test_model_trainer_overrides_global_trainer() -> None:
    data = _config(trainer={"max_epochs": 5, "accelerator": "cpu"})
    data["models"][0]["trainer"] = {"max_epochs": 1}
    runs = parse_config(data).runs()
    assert runs[0].trainer == {"max_epochs": 1, "accelerator": "cpu"}
    assert runs[1].trainer == {"max_epochs": 5, "accelerator": "cpu"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"modles": []}, "unknown keys"),
        ({"models": []}, "non-empty list"),
        ({"models": [{"name": "A"}]}, "class_path"),
        ({"models": [{"class_path": "Patchcore"}]}, "dotted import path"),
        ({"models": [{"class_path": "a.A"}, {"class_path": "b.A"}]}, "repeated: A"),
        ({"weights": "imagenet"}, "weights must be one of"),
        ({"evaluation": {"metrics": ["image_AUC"]}}, "unknown metrics"),
        ({"evaluation": {"resolution": 224}}, "unknown keys"),
        ({"k_shots": ["four"]}, "int values"),
        ({"datasets": [{"class_path": "a.D", "weights": "random"}]}, "belong to models"),
    ],
)
def test_invalid_configs_name_the_problem(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_config(**change))


def test_no_argument_means_the_packaged_demo(tmp_path: Path) -> None:
    assert resolve_config_path(None) == packaged_config_path("demo")
    assert resolve_config_path("ci") == packaged_config_path("ci")
    own = tmp_path / "mine.yaml"
    own.write_text(yaml.safe_dump(_config()))
    assert resolve_config_path(own) == own
    with pytest.raises(ConfigError, match="packaged configs"):
        resolve_config_path("nope")


@pytest.mark.parametrize("name", PACKAGED_CONFIGS)
def test_packaged_configs_load_and_benchmarks_folder_points_at_them(name: str) -> None:
    config = load_config(name)
    assert config.runs()
    user_copy = REPO / "benchmarks" / "configs" / f"{name}.yaml"
    assert user_copy.resolve() == packaged_config_path(name).resolve()


def test_demo_is_the_promised_grid() -> None:
    demo = load_config("demo")
    assert demo.k_shots == (4, 16) and len(demo.seeds) == 2 and demo.weights == ("random",)
    classes = [m.class_path for m in demo.models]
    assert classes[0] == "fusionmedclip_anomalib.FusionMedCLIP"
    assert {"anomalib.models.Patchcore", "fusionmedclip_anomalib.models.winclip.WinClip"} <= set(classes)
    assert len(classes) == 4
    assert all(d.class_path.endswith("Phantom") for d in demo.datasets)


def test_paper_config_follows_spec_protocol() -> None:
    paper = load_config("paper")
    assert paper.k_shots == (4, 8, 16, 32) and paper.seeds == (0, 1, 2)
    assert [d.name for d in paper.datasets] == ["BrainMRI", "BUSI", "CheXpert"]
    ours = paper.models[0].init_args
    assert ours["backbone"] == "ViT-L-14" and ours["pretrained"] == "openai"


def test_ablation_rows_switch_as_table_8() -> None:
    rows = {m.name: m.init_args for m in load_config("ablation").models}
    assert len(rows) == 6
    first, last = rows["row1-clip-manual-gap"], rows["row6-fusionmedclip"]
    assert (first["prompt"], first["alignment"], first["lora"], first["block_adapters"]) == (
        "manual",
        "gap",
        False,
        False,
    )
    assert (last["prompt"], last["alignment"], last["lora"], last["block_adapters"]) == (
        "coop_umls",
        "conv1x1",
        True,
        True,
    )
