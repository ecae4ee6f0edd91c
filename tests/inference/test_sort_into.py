"""`classify predict --sort-into`: copies by predicted class, idempotent, no name collisions."""

from pathlib import Path

from visionkit.inference.classification import sort_into_folders


def rows(predicted: dict[Path, str]) -> list[dict]:
    return [{"path": str(p), "top": [{"class": c, "prob": 0.9}]} for p, c in predicted.items()]


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_same_names_stay_apart_and_a_rerun_moves_instead_of_duplicating(tmp_path):
    a, b = tmp_path / "in" / "a" / "x.png", tmp_path / "in" / "b" / "x.png"
    for path, data in ((a, b"aaa"), (b, b"bbb")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    out = tmp_path / "sorted"
    sort_into_folders(rows({a: "cat", b: "cat"}), out)
    assert files(out) == ["cat/a/x.png", "cat/b/x.png"]
    assert (out / "cat" / "b" / "x.png").read_bytes() == b"bbb"
    sort_into_folders(rows({a: "cat", b: "cat"}), out)  # the same run again: nothing new
    assert files(out) == ["cat/a/x.png", "cat/b/x.png"]
    sort_into_folders(rows({a: "cat", b: "dog"}), out)  # b now predicted dog: moved, not copied
    assert files(out) == ["cat/a/x.png", "dog/b/x.png"]
