"""benchmarks/demo_quality.py runs end to end on a short clip and writes the JSON it prints."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_quality_scores_a_short_clip_and_writes_json(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "demo_quality.py"), "--seeds", "0,1",
                           "--frames", "2", "--name", "smoke", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert set(result["per_seed"]) == {"0", "1"} and result["total"]["frames"] == 4
    assert result["total"]["drawn"] > 0 and 0 <= result["total"]["cross_limb_rate"] <= 1
    assert "seed 0: recall" in done.stdout and "wrote" in done.stdout
