"""The README's test command is the one CI runs, and its example prints what it says."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l and not l.startswith("#")]
    command = ci_lines[-1]
    assert "pytest" in command
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert command in blocks, f"README quickstart does not show the CI command {command!r}"


def test_readme_gradcheck_example_output_is_real(capsys):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Checking a gradient.*?```python\n(.*?)```", readme, re.S).group(1)
    shown = re.search(r"Output:\n\n```\n(.*?)```", readme, re.S).group(1)
    exec(compile(code, "README example", "exec"), {})
    out = capsys.readouterr().out
    # The error columns are rounding noise (they may differ in the last digits
    # with another BLAS); everything else must match to the character.
    noise = re.compile(r"(\d\.\d{3}e-(?:09|1\d))")
    assert noise.sub("<noise>", out) == noise.sub("<noise>", shown)
    assert len(noise.findall(out)) == len(noise.findall(shown)) == 12


def _blocks_after(readme, heading):
    section = readme.split(heading, 1)[1]
    return re.findall(r"```(\w*)\n(.*?)```", section, re.S)


def test_readme_keras_examples_print_what_they_show(capsys, tmp_path, monkeypatch):
    import lstmlab

    readme = (ROOT / "README.md").read_text()
    blocks = _blocks_after(readme, "## Keras-style models")
    (lang1, snippet), (_, snippet_out), (lang2, training), (_, training_out) = blocks[:4]
    assert lang1 == lang2 == "python"
    lstmlab.clear_session()
    exec(compile(snippet, "README snippet", "exec"), {})
    assert capsys.readouterr().out == snippet_out
    monkeypatch.chdir(tmp_path)
    lstmlab.clear_session()
    exec(compile(training, "README training example", "exec"), {})
    assert capsys.readouterr().out == training_out


def test_readme_seed_model_prints_what_keras_prints(monkeypatch):
    keras = __import__("pytest").importorskip("keras")
    readme = (ROOT / "README.md").read_text()
    (_, snippet), (_, shown) = _blocks_after(readme, "## Keras-style models")[:2]
    assert snippet.startswith("import lstmlab as keras\n")
    monkeypatch.setenv("COLUMNS", "80")  # the width Keras's table takes in an 80-column terminal
    keras.backend.clear_session()  # layer names start from "embedding" again, however many models came before
    lines = []
    real_summary = keras.Model.summary
    monkeypatch.setattr(keras.Model, "summary", lambda self, **kw: real_summary(
        self, print_fn=lambda text, *a, **k: lines.extend(text.rstrip("\n").split("\n")), **kw))
    exec(compile(snippet.replace("import lstmlab as keras", "import keras"), "README snippet in Keras", "exec"), {})
    assert "\n".join(lines) + "\n" == shown


@__import__("pytest").mark.parametrize("heading", ["### Keras 3 files", "### PyTorch, both ways", "### ONNX export"])
def test_readme_interop_examples_print_what_they_show(heading, capsys, tmp_path, monkeypatch):
    """Each interop subsection's first example, run as shown, prints the output block under it."""
    pytest = __import__("pytest")
    pytest.importorskip({"### Keras 3 files": "keras", "### PyTorch, both ways": "torch"}.get(heading, "onnxruntime"))
    import lstmlab

    readme = (ROOT / "README.md").read_text()
    blocks = _blocks_after(readme, heading)
    (lang, code), (_, shown) = blocks[:2]
    assert lang == "python"
    monkeypatch.chdir(tmp_path)
    lstmlab.clear_session()
    if heading.startswith("### Keras"):
        __import__("keras").backend.clear_session()
    exec(compile(code, f"README {heading}", "exec"), {})
    assert capsys.readouterr().out == shown
