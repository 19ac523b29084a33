"""The README's Keras example runs as printed (with the output folder moved into tmp_path)."""
import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert code.count("\n") <= 16  # "a ten-line example", give or take the imports and a comment
    code = code.replace("/tmp/shapes_demo", str(tmp_path / "shapes_demo")).replace("epochs=1", "epochs=1, verbose=0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(2, 16, 16, 128)" in out.stdout
