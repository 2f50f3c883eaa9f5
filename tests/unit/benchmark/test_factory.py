"""Building models and datamodules from class paths: what the grid owns and what the harness switches off."""

from __future__ import annotations

import pytest

from fusionmedclip_anomalib.benchmark.config import parse_config
from fusionmedclip_anomalib.benchmark.factory import ProtocolError, build_datamodule, build_model, import_class

HERE = __name__


class FakeModel:
    def __init__(
        self,
        backbone: str = "r18",
        pre_trained: bool = True,
        k_shot: int = 0,
        seed: int = 123,
        post_processor: bool = True,
        evaluator: bool = True,
        visualizer: bool = True,
    ) -> None:
        self.args = dict(locals())
        del self.args["self"]
        self.post_processor = "built" if post_processor else None
        self.evaluator = "built" if evaluator else None
        self.visualizer = "built" if visualizer else None


class BareModel:
    """A model whose constructor does not expose anomalib's component switches."""

    def __init__(self, pre_trained: bool = True) -> None:
        self.post_processor = "built"
        self.evaluator = None


class KShotData:
    def __init__(self, root: str = ".", k_shot: int = 16, seed: int = 0) -> None:
        self.args = {"root": root, "k_shot": k_shot, "seed": seed}


class FolderLikeData:
    def __init__(self, root: str = ".", seed: int | None = None) -> None:
        self.args = {"root": root, "seed": seed}


def _spec(model: dict, dataset: dict | None = None, weights: str = "random"):
    return parse_config(
        {
            "k_shots": [8],
            "seeds": [3],
            "weights": weights,
            "models": [model],
            "datasets": [dataset or {"name": "D", "class_path": f"{HERE}.KShotData"}],
        }
    ).runs()[0]


def test_model_gets_weights_k_shot_seed_and_no_post_processing() -> None:
    model = build_model(_spec({"name": "M", "class_path": f"{HERE}.FakeModel", "init_args": {"backbone": "x"}}))
    assert model.args == {
        "backbone": "x",
        "pre_trained": False,
        "k_shot": 8,
        "seed": 3,
        "post_processor": False,
        "evaluator": False,
        "visualizer": False,
    }
    assert model.post_processor is None and model.evaluator is None and model.visualizer is None


def test_explicit_k_shot_is_kept_for_models() -> None:
    spec = _spec({"name": "M", "class_path": f"{HERE}.FakeModel", "init_args": {"k_shot": 0}})
    assert build_model(spec).args["k_shot"] == 0  # e.g. zero-shot WinCLIP on any grid


def test_components_are_switched_off_even_without_constructor_switches() -> None:
    model = build_model(_spec({"name": "M", "class_path": f"{HERE}.BareModel"}))
    assert model.post_processor is None


@pytest.mark.parametrize(
    ("init_args", "message"),
    [({"seed": 1}, "grid controls"), ({"post_processor": True}, "scores raw outputs")],
)
def test_grid_and_protocol_owned_arguments_cannot_be_set(init_args: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        build_model(_spec({"name": "M", "class_path": f"{HERE}.FakeModel", "init_args": init_args}))


def test_datamodule_gets_k_shot_and_seed_when_it_takes_them() -> None:
    datamodule, native = build_datamodule(_spec({"name": "M", "class_path": f"{HERE}.FakeModel"}))
    assert native and datamodule.args == {"root": ".", "k_shot": 8, "seed": 3}
    folder = {"name": "F", "class_path": f"{HERE}.FolderLikeData", "init_args": {"root": "/data"}}
    datamodule, native = build_datamodule(_spec({"name": "M", "class_path": f"{HERE}.FakeModel"}, folder))
    assert not native and datamodule.args == {"root": "/data", "seed": 3}
    with pytest.raises(ProtocolError, match="k_shot"):
        build_datamodule(
            _spec(
                {"name": "M", "class_path": f"{HERE}.FakeModel"},
                {"name": "D", "class_path": f"{HERE}.KShotData", "init_args": {"k_shot": 4}},
            )
        )


def test_import_errors_name_the_class_path() -> None:
    assert import_class(f"{HERE}.FakeModel") is FakeModel
    with pytest.raises(ImportError, match="no_such_module"):
        import_class("no_such_module.Model")
    with pytest.raises(ImportError, match="has no class 'Nope'"):
        import_class(f"{HERE}.Nope")
