"""`import kcv` pulls in neither flags nor pipelines, and without TensorFlow says what to install.

TensorFlow itself imports absl.flags, so "kcv does not import absl.flags" is checked as: no kcv
source imports absl, and no flag is defined by a kcv module after importing all of kcv.
"""
import pathlib
import subprocess
import sys

import kcv


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_kcv_leaves_flags_and_pipelines_alone():
    code = (
        "import sys, pkgutil, importlib, kcv\n"
        "for m in pkgutil.walk_packages(kcv.__path__, 'kcv.'): importlib.import_module(m.name)\n"
        "kcv.models.list_models()\n"
        "from absl import flags\n"
        "bad = [m for m in sys.modules if m == 'pipelines' or m.startswith('pipelines.')]\n"
        "bad += [m for m in flags.FLAGS.flags_by_module_dict() if 'kcv' in m]\n"
        "print('BAD', bad)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BAD []" in out.stdout


def test_import_without_tensorflow_is_one_clear_line():
    code = "import sys\nsys.modules['tensorflow'] = None\nimport kcv\n"
    out = _run(code)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: kcv needs TensorFlow")
    assert "kcv[cpu]" in last and "kcv[gpu]" in last


def test_no_kcv_source_imports_absl():
    root = pathlib.Path(kcv.__file__).parent
    offenders = [str(p) for p in root.rglob("*.py") if "absl" in p.read_text()]
    assert offenders == []
