"""The predict-memory benchmark at a tiny size: every image predicted, peaks and ratio reported."""

from visionkit.benchmarks import BENCHMARKS, predict_memory


def test_small_run_reports_peaks_and_ratio() -> None:
    out = predict_memory.run(["--sizes", "3,6", "--image-size", "64"])
    assert out["images"] == {"3": 3, "6": 6}
    assert all(v > 100 for v in out["peak_rss_mb"].values())  # torch alone is several hundred MB
    assert out["ratio_6_vs_3"] == round(out["peak_rss_mb"]["6"] / out["peak_rss_mb"]["3"], 3)
    assert BENCHMARKS["predict-memory"] == "visionkit.benchmarks.predict_memory"
