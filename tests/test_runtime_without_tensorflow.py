import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK_TF = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'optuna', 'wandb'):
            raise ImportError(name + ' is blocked in this test')
sys.meta_path.insert(0, _Block())
"""


def test_runtime_imports_and_streams_when_tensorflow_import_raises():
    code = BLOCK_TF + """
try:
    import tensorflow
    raise SystemExit('tensorflow import was not blocked')
except ImportError:
    pass
import numpy as np
import runtime
from runtime.model_file import IdentityModel
sd = runtime.StreamDenoiser(IdentityModel(runtime.preset('paper8k')), postfilter='none')
x = np.random.default_rng(0).standard_normal(1000)
y = np.concatenate([sd.process(x), sd.flush()])
assert np.max(np.abs(y[192:] - x)) < 1e-5
assert not any(m.split('.')[0] in ('tensorflow', 'tf_keras', 'optuna', 'wandb') for m in sys.modules)
print('ok')
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
