import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fusionmedclip_anomalib.synthesis.cli import main


@pytest.fixture
def image_folder(tmp_path, phantoms):
    folder = tmp_path / "normals"
    (folder / "nested").mkdir(parents=True)
    Image.fromarray(phantoms["head"](90, 110, 1)).save(folder / "a.png")
    Image.fromarray(np.dstack([phantoms["ultrasound"](120, 100, 2)] * 3)).save(folder / "nested" / "b.jpg")
    Image.fromarray(phantoms["chest"](80, 80, 3).astype(np.uint16) * 257).save(folder / "c16.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_writes_a_contact_sheet_and_prints_its_path(image_folder, tmp_path, capsys):
    out = tmp_path / "sheets"
    assert main(["--images", str(image_folder), "--out", str(out), "--n", "4", "--size", "64", "--seed", "3"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.endswith("synthesis_fusionmedclip_seed3.png")
    sheet = Image.open(path)
    assert sheet.size[0] > 300 and sheet.size[1] > 4 * 150  # three columns, four rows


def test_single_file_preset_and_task(image_folder, tmp_path, capsys):
    out = tmp_path / "sheets"
    args = ["--images", str(image_folder / "a.png"), "--out", str(out), "--n", "2", "--size", "48"]
    assert main([*args, "--preset", "mediclip"]) == 0
    assert main([*args, "--task", "guided_deformation"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["synthesis_guided_deformation_seed0.png", "synthesis_mediclip_seed0.png"]


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["--images", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_folder_without_readable_images_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"definitely not a png")
    assert main(["--images", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "none readable" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--images", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "no image files" in capsys.readouterr().err


def test_bad_preset_or_task_is_a_clear_error(image_folder, tmp_path, capsys):
    assert main(["--images", str(image_folder), "--out", str(tmp_path), "--preset", "paper"]) == 2
    assert "known presets" in capsys.readouterr().err
    assert main(["--images", str(image_folder), "--out", str(tmp_path), "--task", "tumour"]) == 2
    assert "known tasks" in capsys.readouterr().err


def test_module_import_stays_light():
    code = (
        "import sys; import fusionmedclip_anomalib.synthesis.cli; "
        "heavy = {'numpy', 'cv2', 'matplotlib', 'PIL', 'torch'} & set(sys.modules); print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
