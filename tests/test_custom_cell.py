"""The README's own-cell example runs as shown, and its gradient check catches a wrong backward."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_cell_example():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Writing your own cell", 1)[1]
    (code, shown) = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    return code, shown


def test_readme_cell_example_prints_what_it_shows(capsys):
    code, shown = readme_cell_example()
    exec(compile(code, "README cell example", "exec"), {})
    assert capsys.readouterr().out == shown


def test_check_layer_reports_a_wrong_step_backward(capsys):
    code, _ = readme_cell_example()
    # Drop the path through f * h_prev into the gate: the classic half-done backward.
    broken = code.replace("df_pre = (df + dfh * h_prev) * f * (1 - f)", "df_pre = df * f * (1 - f)")
    assert broken != code
    namespace = {}
    exec(compile(broken.split("layer = layers.RNN")[0], "broken cell", "exec"), namespace)
    import numpy as np
    from lstmlab import layers
    from lstmlab.gradcheck import check_layer

    cell = namespace["MinimalGatedCell"](4, dtype="float64")
    rng = np.random.default_rng(0)
    report = check_layer(layers.RNN(cell, return_sequences=True, dtype="float64"), rng.normal(size=(2, 5, 3)))
    assert not report.ok
    assert "x" in report.failed, report
    assert any(name.endswith("/recurrent_kernel") for name in report.failed), report
