"""The Markdown block refresh and the table rendering."""

import pytest

from fusionmedclip_anomalib.perf.report import (
    END_MARKER,
    START_MARKER,
    MarkersNotFound,
    refresh_markdown_file,
    replace_marked_block,
)

README = f"""# Title

Intro text.

## Performance

{START_MARKER}
old table
| a | b |
{END_MARKER}

## After

Trailing text, untouched.
"""


def test_replace_marked_block_replaces_only_the_block():
    updated = replace_marked_block(README, "| new | table |\n")
    before, after = README.split(START_MARKER)[0], README.split(END_MARKER)[1]
    assert updated.startswith(before + START_MARKER + "\n| new | table |\n" + END_MARKER)
    assert updated.endswith(after)
    assert "old table" not in updated


def test_replace_marked_block_is_idempotent():
    once = replace_marked_block(README, "x")
    assert replace_marked_block(once, "x") == once


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all",
        f"{START_MARKER}\nonly a start",
        f"{END_MARKER}\nend first\n{START_MARKER}\n",
        f"{START_MARKER}\n{END_MARKER}\n{START_MARKER}\n{END_MARKER}\n",
    ],
)
def test_missing_repeated_or_reversed_markers_raise(text):
    with pytest.raises(MarkersNotFound):
        replace_marked_block(text, "x")


def test_refresh_markdown_file_in_place(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(README)
    refresh_markdown_file(path, "fresh")
    text = path.read_text()
    assert f"{START_MARKER}\nfresh\n{END_MARKER}" in text and text.endswith("Trailing text, untouched.\n")
