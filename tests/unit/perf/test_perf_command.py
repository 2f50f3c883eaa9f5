"""``fusionmedclip perf`` end to end on fmc-tiny: JSON keys and sane values, Markdown out, README refresh, render."""

import json

import pytest

from fusionmedclip_anomalib.perf import main
from fusionmedclip_anomalib.perf.report import END_MARKER, START_MARKER

ARGS = [
    "--backbone", "fmc-tiny", "--device", "cpu", "--repeats", "2", "--warmup", "1", "--batch-sizes", "1", "2",
    "--train-batch-sizes", "2", "--no-baselines", "--threads", "1", "--startup-repeats", "1",
    "--min-sample-seconds", "0", "--loader-workers", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def perf_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("perf")
    output, markdown = folder / "perf.json", folder / "perf.md"
    assert main([*ARGS, "--output", str(output), "--markdown-out", str(markdown)]) == 0
    return json.loads(output.read_text()), markdown.read_text(), folder


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_json_has_every_section(perf_run):
    result, _, _ = perf_run
    for key in (
        "schema",
        "settings",
        "machine",
        "goals",
        "startup",
        "parameters",
        "inference",
        "profile",
        "training",
        "baselines",
    ):
        assert key in result, key
    assert result["settings"]["feature_layers"] == [2, 4, 6]
    assert result["machine"]["cores"] >= 1 and result["machine"]["torch"]
    assert result["baselines"] == {"skipped": True}


def test_inference_rates_and_ratios_are_sane(perf_run):
    inference = perf_run[0]["inference"]
    assert set(inference) == {"batch_1", "batch_2"}
    for batch in inference.values():
        for name in ("fusionmedclip_merged", "fusionmedclip_unmerged", "bare_backbone"):
            assert positive(batch[name]["images_per_s"]) and positive(batch[name]["seconds_per_batch"])
            assert len(batch["samples"][name]["samples_s"]) == 2
        assert positive(batch["ratio_merged"]) and positive(batch["ratio_unmerged"])
        # the adapters and maps add compute to the bare tower, never remove it
        assert batch["flops"]["fusionmedclip"] > batch["flops"]["bare_backbone"] > 0
        assert 1.0 < batch["flop_ratio"] < 1.5
        assert isinstance(batch["meets_goal_merged"], bool)
        assert positive(batch["memory"]["rss_peak_mib"])


def test_training_figures_are_sane(perf_run):
    training = perf_run[0]["training"]["batch_2"]
    for key in ("seconds_per_step", "bare_forward_backward_s", "ratio", "synthesis_s", "ratio_presynthesised"):
        assert positive(training[key]), key
    # the step's batch comes from DataLoader workers that synthesise it; the verdict compares how much longer a step
    # waits for such a batch than for a ready-made one with the synthesis time
    assert training["synthesis_runs_in"].startswith("2 DataLoader worker(s)")
    assert isinstance(training["batch_wait_s"], float)
    assert training["synthesis_overlaps_compute"] == (training["batch_wait_s"] < 0.5 * training["synthesis_s"])
    assert training["flop_ratio"] > 1.0
    assert positive(training["memory"]["rss_peak_mib"])


def test_parameters_checkpoint_and_startup(perf_run):
    result = perf_run[0]
    parameters = result["parameters"]
    assert 0 < parameters["trainable"] < parameters["total"]
    assert 0 < parameters["checkpoint_bytes"] < parameters["checkpoint_with_optimizer_bytes"]
    # the compact checkpoint holds the trainable state, not the frozen backbone
    assert parameters["checkpoint_bytes"] < 4 * parameters["total"] / 2
    assert positive(result["startup"]["median_s"]) and result["startup"]["command"].endswith("--help")


def test_profile_names_attention_kernels(perf_run):
    profile = perf_run[0]["profile"]["fusionmedclip_merged"]
    assert profile["attention_kernels"]
    assert profile["host_device_copies"] is None  # no accelerator here
    assert profile["top_ops"][0]["self_ms"] > 0


def test_markdown_names_the_machine_and_the_figures(perf_run):
    result, markdown, _ = perf_run
    assert markdown.startswith("### fmc-tiny · cpu · fp32")
    assert result["machine"]["cpu"] in markdown
    for label in ("time ratio merged / bare", "s per optimiser step", "trainable parameters", "--help"):
        assert label in markdown


def test_render_refreshes_readme_from_saved_json(perf_run, capsys):
    _, markdown, folder = perf_run
    readme = folder / "README.md"
    readme.write_text(f"# x\n\n{START_MARKER}\nstale\n{END_MARKER}\n\nkept\n")
    assert main(["--render", str(folder / "perf.json"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "stale" not in text and markdown.strip() in text and text.endswith("\nkept\n")
    assert "time ratio merged / bare" in capsys.readouterr().out


def test_readme_without_markers_fails_cleanly(perf_run):
    folder = perf_run[2]
    readme = folder / "NOMARKERS.md"
    readme.write_text("# no markers\n")
    assert main(["--render", str(folder / "perf.json"), "--readme", str(readme)]) == 2
    assert readme.read_text() == "# no markers\n"
