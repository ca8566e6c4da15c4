"""Training reports (``ember train ... --report DIR`` and ``ember.report.write_report``): the files
are written, the PNGs are pictures, ``report.json`` holds the History's final numbers, the test
metrics and the gradient-health records, and ``index.html`` is a well-formed self-contained page
that shows the command and every figure in the folder."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shlex
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

import ember
from ember import cli, layers

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from ember import report as report_module  # noqa: E402
from ember.diagnostics import GradientHealth, diagnose  # noqa: E402
from ember.report import StepTimer, write_report  # noqa: E402

DIGITS_FIGURES = {"training_curves", "confusion_matrix", "gradient_flow", "diagnosis",
                  "predictions"}


def assert_png(path) -> None:
    """``path`` is a PNG of a sensible size with something drawn on it."""
    assert path.is_file() and path.stat().st_size > 2_000, path
    rgb = np.round(imread(path)[..., :3] * 255).astype(np.uint32)
    assert min(rgb.shape[:2]) >= 100, rgb.shape
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert rgb.std() > 5 and len(np.unique(packed)) > 20, f"{path.name} is blank"
    assert np.mean(packed != 0xFFFFFF) > 0.02, f"{path.name} is almost all white"


class PageParser(HTMLParser):
    """Checks that every element is closed in order; collects images, links and text."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
            assert attrs.get("alt"), "an image without alt text"
        for name in ("src", "href"):
            assert "//" not in (attrs.get(name) or ""), f"{tag} fetches {attrs[name]}"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_page(path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert parser.doctype and not parser.stack, f"unclosed elements: {parser.stack}"
    assert {"html", "head", "title", "body", "table", "pre"} <= parser.tags
    assert not parser.tags & {"script", "link", "iframe"}, "the page must be self-contained"
    return parser


def strict_json(path) -> dict:
    def refuse(name):
        raise AssertionError(f"report.json holds {name}: not strict JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------ ember train
def test_train_with_report_writes_figures_numbers_and_page(tmp_path, monkeypatch):
    folder, saved = tmp_path / "report", tmp_path / "digits.ember"
    argv = ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--verbose", "0",
            "--output", str(saved), "--report", str(folder)]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/ember", *argv])  # as the console script runs
    seen = {}

    def spy(*args, **kwargs):  # keep what the CLI hands over (the History) to compare with
        seen.update(kwargs)
        return write_report(*args, **kwargs)

    monkeypatch.setattr(report_module, "write_report", spy)
    code, out, err = run_cli(argv)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1].startswith("test accuracy: ")  # still the last line, as without --report
    assert f"report: {folder / 'index.html'}" in lines

    pngs = {p.stem for p in folder.glob("*.png")}
    assert pngs == DIGITS_FIGURES
    for name in pngs:
        assert_png(folder / f"{name}.png")

    data = strict_json(folder / "report.json")
    history = seen["history"].history
    assert data["final_metrics"] == {k: v[-1] for k, v in history.items()}
    assert set(data["final_metrics"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert data["history"] == history and data["epochs"] == 2
    assert f"{data['test_metrics']['accuracy']:.4f}" == lines[-1].split()[-1]
    reloaded = ember.models.load_model(saved)
    (_, _), (x_test, y_test) = cli.load_dataset("digits")
    loss, accuracy = reloaded.evaluate(x_test, y_test, batch_size=256, verbose=0)
    assert math.isclose(data["test_metrics"]["loss"], loss, rel_tol=1e-6)
    assert data["test_metrics"]["accuracy"] == accuracy

    # 1437 training digits, 10 % for validation: 41 batches of 32 per epoch, 82 in all; one in
    # 20 recorded (the minimum interval) from the first
    health = data["gradient_health"]
    assert health["every"] == 20 and health["steps"] == [0, 20, 40, 60, 80]
    dense = [layer.name for layer in seen["model"].layers if layer.trainable_weights]
    assert len(dense) == 3 and list(health["grad_norms"]) == dense  # names depend on the session
    assert all(len(v) == 5 and all(g > 0 for g in v) for v in health["grad_norms"].values())
    assert health["grad_norms"] == seen["health"].grad_norms
    recording = data["config"]["gradient_health_recording"]
    assert recording["steps"] == 82 and recording["recorded_steps"] == 5
    assert recording["percent"] >= 0 and recording["other_ms"] > 0
    assert data["diagnosis"]["samples"] == 256
    assert [r["name"] for r in data["diagnosis"]["layers"]] == dense
    assert data["config"]["image_shape"] == [8, 8] and data["config"]["epochs"] == 2
    assert data["model"]["parameters"] == 50_826

    command = "ember " + shlex.join(argv)  # exactly what was typed
    assert data["config"]["command"] == command
    page = parse_page(folder / "index.html")
    text = " ".join(page.text)
    assert command in text and "Total params: 50,826" in text
    assert sorted(page.images) == sorted(f"{name}.png" for name in pngs)
    for finding in health["findings"] + data["diagnosis"]["findings"]:
        assert finding in text
    if not health["findings"]:
        assert "No layer is flagged" in text
    assert f"{data['test_metrics']['accuracy']:.4g}" in text


def test_command_line_spelled_out_reproduces_the_arguments(monkeypatch):
    argv = ["train", "--epochs", "3", "--schedule", "cosine", "--report", "out dir"]
    args = cli.make_parser().parse_args(argv)
    monkeypatch.setattr(sys, "argv", ["pytest", "-q"])  # not an ember command: spell it out
    command = cli._command_line(args)
    words = shlex.split(command)
    assert words[:2] == ["ember", "train"] and "--report" in words and "out dir" in words
    assert vars(cli.make_parser().parse_args(words[1:])) == vars(args)


def test_missing_matplotlib_is_a_clear_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["train", "--epochs", "1", "--report", str(tmp_path / "r")])
    assert code == 2
    assert err.startswith("ember train: error: ember train --report needs matplotlib")
    assert "pip install 'ember[viz]'" in err and "Traceback" not in err
    assert out == "" and not list(tmp_path.iterdir())  # no training, nothing saved


def test_report_path_that_is_a_file_is_an_error_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("x")
    code, out, err = run_cli(["train", "--epochs", "1", "--report", "taken"])
    assert code == 2 and "--report: taken is a file" in err and out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


# ------------------------------------------------------------------------------ write_report
def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    return (centres[y] + rng.normal(size=(n, 2))).astype(np.float32), y.astype(np.int64)


def test_write_report_on_a_tiny_model(tmp_path):
    x, y = _blobs(96, 0)
    x_test, y_test = _blobs(40, 1)
    ember.manual_seed(0)
    model = ember.Sequential([layers.Input(shape=(2,)), layers.Dense(8, activation="tanh"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    health, timer = GradientHealth(every=3), StepTimer()
    history = model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0,
                        callbacks=[health, timer])
    (tmp_path / "predictions.png").write_bytes(b"an older report's")  # not an image run: goes
    config = {"dataset": "blobs", "lr": np.float32(0.001), "where": tmp_path, "odd": math.nan,
              "note": "<script>alert(1)</script>", "overhead": timer.overhead(health.steps)}
    page = write_report(tmp_path, model=model, history=history, config=config, x_test=x_test,
                        y_test=y_test, health=health, class_names=["left", "right", "top"])
    assert page == tmp_path / "index.html"
    assert {p.stem for p in tmp_path.glob("*.png")} == DIGITS_FIGURES - {"predictions"}
    for path in tmp_path.glob("*.png"):
        assert_png(path)

    data = strict_json(tmp_path / "report.json")
    assert data["final_metrics"] == {k: v[-1] for k, v in history.history.items()}
    expected = model.evaluate(x_test, y_test, batch_size=256, verbose=0, return_dict=True)
    assert data["test_metrics"] == expected
    assert data["config"]["odd"] is None and data["config"]["where"] == str(tmp_path)
    assert data["config"]["lr"] == pytest.approx(0.001)
    # 72 training samples in batches of 16: 5 per epoch, 15 in all; one in 3 recorded
    assert data["gradient_health"]["steps"] == health.steps == [0, 3, 6, 9, 12]
    assert data["config"]["overhead"]["steps"] == 15
    assert data["config"]["overhead"]["recorded_steps"] == 5
    # no sample batch given: the one-shot diagnosis used the test data (all 40 samples)
    again = diagnose(model, x_test, y_test)
    assert data["diagnosis"]["samples"] == 40
    assert [r["grad_norm"] for r in data["diagnosis"]["layers"]] == pytest.approx(
        [r.grad_norm for r in again.layers], rel=1e-6)
    correct = np.mean(model.predict(x_test).argmax(axis=1) == y_test)
    assert data["captions"]["confusion_matrix"].endswith(f"holds the {correct:.1%} that are right.")

    html = page.read_text(encoding="utf-8")
    parsed = parse_page(page)
    assert sorted(parsed.images) == sorted(data["figures"].values())
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Ember training report: blobs" in html


def test_write_report_draws_a_predictions_grid_for_images(tmp_path):
    rng = np.random.default_rng(0)
    y = (np.arange(48) % 2).astype(np.int64)
    x = rng.random((48, 6, 6, 1)).astype(np.float32)
    x[y == 1, :3] += 1.0  # class 1: a bright top half
    ember.manual_seed(0)
    model = ember.Sequential([layers.Input(shape=(6, 6, 1)), layers.Flatten(),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, verbose=0)
    page = write_report(tmp_path / "new" / "folder", model=model, history=history, config={},
                        x_test=x, y_test=y, x_sample=x[:8], y_sample=y[:8])
    names = {p.stem for p in page.parent.glob("*.png")}
    assert names == {"training_curves", "confusion_matrix", "diagnosis", "predictions"}
    assert_png(page.parent / "predictions.png")
    data = strict_json(page.parent / "report.json")
    # one sigmoid output: class 1 above 0.5, as the binary accuracy metric counts it
    assert f"{data['test_metrics']['accuracy']:.1%}" in data["captions"]["confusion_matrix"]
    assert data["diagnosis"]["samples"] == 8 and data["gradient_health"] is None
    assert "Not recorded" not in page.read_text() and "Command" not in page.read_text()
    parse_page(page)


@pytest.fixture(scope="module")
def trained():
    x, y = _blobs(32, 0)
    ember.manual_seed(0)
    model = ember.Sequential([layers.Input(shape=(2,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model, model.fit(x, y, epochs=1, verbose=0), x, y


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"directory": 3}, TypeError, r"write_report: directory must be a path"),
        ({"model": "mlp"}, TypeError, r"write_report: model must be an Ember model, got str"),
        ({"history": [0.5]}, TypeError, r"write_report: history must be a History"),
        ({"history": {"loss": []}}, ValueError, r"write_report: history holds no epoch"),
        ({"config": None}, TypeError, r"write_report: config must be a dict"),
        ({"y_test": "x"}, ValueError, r"give x_test and y_test together \(got only y_test\)"),
        ({"y_test": np.zeros(5)}, ValueError, r"x_test has 32 samples but y_test has 5"),
        ({"health": "yes"}, TypeError, r"write_report: health must be an ember.diagnostics"),
        ({"class_names": "abc"}, TypeError, r"write_report: class_names must be a list"),
        ({"config": {"image_shape": (3, 3)}}, ValueError,
         r"config\['image_shape'\] must be .* \(2\), got \(3, 3\)"),
    ],
)
def test_write_report_bad_arguments(trained, tmp_path, change, error, message):
    model, history, x, y = trained
    kwargs = {"directory": tmp_path / "r", "model": model, "history": history, "config": {},
              "x_test": x, "y_test": y, **change}
    if change.get("y_test") is not None and not isinstance(change["y_test"], np.ndarray):
        kwargs["x_test"] = None
    with pytest.raises(error, match=message):
        write_report(kwargs.pop("directory"), **kwargs)
    assert not (tmp_path / "r").exists()  # checked before anything is written


def test_write_report_into_a_file_is_an_error(trained, tmp_path):
    model, history, _, _ = trained
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"write_report: directory .* is not a folder"):
        write_report(tmp_path / "file", model=model, history=history, config={})
