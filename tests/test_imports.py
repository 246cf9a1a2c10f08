"""``import gaussmix`` stays light: heavy optional libraries load only when used."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_torch_dask_matplotlib_or_onnx():
    code = (
        "import sys, gaussmix; "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'dask', 'distributed', 'matplotlib', 'onnx', 'onnxruntime', 'skl2onnx'}); "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
