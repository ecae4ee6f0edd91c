"""The ensemble benchmark at a tiny size: members trained per seed, scored alone and combined."""

import json

from visionkit.benchmarks import BENCHMARKS
from visionkit.benchmarks.ensemble import run
from visionkit.data.synthetic import make_shapes_classification


def test_members_and_ensembles_are_scored_on_the_val_split(tmp_path):
    assert BENCHMARKS["ensemble"] == "visionkit.benchmarks.ensemble"
    root = make_shapes_classification(tmp_path / "data", ("circle", "square"), 6, 3, 32, seed=0)
    result = run(["--root", str(root), "--seeds", "0,1", "--epochs", "1", "--image-size", "32"])
    json.dumps(result)
    assert result["val_images"] == 6 and [m["seed"] for m in result["members"]] == [0, 1]
    for member in result["members"]:
        # the recomputed accuracy of best.ckpt is the one its run logged
        assert member["acc"] == member["best_val_acc_logged"]
        assert 0 <= member["acc_tta"] <= 1
    assert set(result["ensemble_acc"]) == {"soft", "majority", "soft_tta", "majority_tta"}
    mean = sum(m["acc"] for m in result["members"]) / 2
    assert result["member_mean_acc"] == round(mean, 4)
    assert result["soft_vote_beats_member_mean"] is (result["ensemble_acc"]["soft"] > mean)
