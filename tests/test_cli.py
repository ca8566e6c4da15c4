"""The ``ember`` command line: help texts, train → save → evaluate on digits, clean errors."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import child_env

import ember
from ember import cli

ROOT = Path(__file__).resolve().parents[1]
ACCURACY_LINE = re.compile(r"^test accuracy: (0\.9\d{3})$")
TRAIN_FLAGS = (
    "--dataset",
    "--model",
    "--epochs",
    "--batch-size",
    "--optimizer",
    "--learning-rate",
    "--schedule",
    "--validation-split",
    "--seed",
    "--output",
    "--data-dir",
    "--verbose",
    "--report",
)


def _run_main(argv) -> tuple[int, str, str]:
    """``ember.cli.main(argv)`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()


# ------------------------------------------------------------------------------ help
def test_ember_help():
    code, out, err = _run_main(["--help"])
    assert code == 0 and err == ""
    assert out.startswith("usage: ember")
    assert "train" in out and "evaluate" in out
    assert "train a model and save it" in out and "evaluate a saved model" in out


def test_train_help_documents_every_flag():
    code, out, _ = _run_main(["train", "--help"])
    assert code == 0
    text = " ".join(out.split())  # argparse wraps long lines
    for flag in TRAIN_FLAGS:
        assert flag in text, f"{flag} is not in 'ember train --help'"
    # every option the parser really has is documented with a help string (no silent flags)
    for name in ("train", "evaluate"):
        parser = _subparser(name)
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and action.help != argparse.SUPPRESS, action.option_strings
        if name == "train":
            options = {s for a in parser._actions for s in a.option_strings} - {"-h", "--help"}
            assert options == set(TRAIN_FLAGS)
    for choice in ("digits", "fashion_mnist", "mnist", "mlp", "linear", "convnet", "convnet_bn"):
        assert choice in text
    code, out, _ = _run_main(["evaluate", "--help"])
    assert code == 0 and "model_path" in out and "--dataset" in out and "--data-dir" in out


# ------------------------------------------------------------------------------ train / evaluate
@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    output = tmp_path_factory.mktemp("cli") / "digits_mlp.ember"
    code, out, err = _run_main(
        ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "20",
         "--output", str(output)]
    )  # fmt: skip
    return code, out, err, output


def test_train_digits_mlp_prints_test_accuracy_and_saves(trained_digits):
    code, out, err, output = trained_digits
    assert code == 0, err
    match = ACCURACY_LINE.match(_last_line(out))
    assert match, f"last line was {_last_line(out)!r}"
    accuracy = float(match.group(1))
    assert accuracy >= 0.96, f"ember train reached test accuracy {accuracy:.4f} < 0.96"
    assert output.is_file() and output.stat().st_size > 0
    assert f"saved to {output}" in out
    assert "Epoch 20/20" in out  # the default verbose=1 shows progress
    assert "Total params: 50,826" in out  # the 64-256-128-10 MLP's summary


def test_evaluate_prints_the_same_accuracy(trained_digits):
    code, train_out, _, output = trained_digits
    assert code == 0
    code, out, err = _run_main(["evaluate", str(output), "--dataset", "digits"])
    assert code == 0, err
    assert ACCURACY_LINE.match(_last_line(out))
    assert _last_line(out) == _last_line(train_out)
    loss_line = next(line for line in train_out.splitlines() if "test loss:" in line)
    train_loss = re.search(r"test loss: ([\d.]+)", loss_line).group(1)
    assert f"test loss: {train_loss}" in out


# ------------------------------------------------------------------------------ errors
def test_fashion_mnist_with_missing_data_dir_is_a_clean_error(tmp_path):
    missing = tmp_path / "no-such-dir"
    code, out, err = _run_main(
        ["train", "--dataset", "fashion_mnist", "--data-dir", str(missing), "--epochs", "1"]
    )
    assert code == 2
    assert err.startswith("ember train: error:")
    assert str(missing) in err
    assert "Traceback" not in err + out
    assert not list(tmp_path.iterdir())  # nothing was created or saved


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], r"--epochs: must be a positive integer, got 0"),
        (["train", "--batch-size", "-4"], r"--batch-size: must be a positive integer"),
        (["train", "--dataset", "cifar"], r"invalid choice: 'cifar'"),
        (["train", "--optimizer", "adm"], r"(?i)did you mean 'adam'"),
        (["train", "--learning-rate", "-1"], r"learning_rate must be in"),
        (["train", "--epochs", "1", "--validation-split", "1.5"], r"validation_split"),
        (["evaluate", "no/such/model.ember"], r"No such file"),
    ],
)
def test_bad_arguments_exit_with_code_2_and_a_message(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be saved into the repository
    code, out, err = _run_main(argv)
    assert code == 2
    assert re.search(message, err), err
    assert "Traceback" not in err + out
    assert not list(tmp_path.iterdir())


def test_evaluate_a_corrupted_file_is_a_clean_error(tmp_path):
    path = tmp_path / "broken.ember"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    code, out, err = _run_main(["evaluate", str(path), "--dataset", "digits"])
    assert code == 2
    assert "ember evaluate: error:" in err and "not an Ember checkpoint" in err
    assert "Traceback" not in err + out


def test_console_script_is_installed(tmp_path):
    script = Path(sys.executable).with_name("ember")
    assert script.is_file(), f"the 'ember' console script is not installed next to {sys.executable}"
    missing = tmp_path / "no-such-dir"
    result = subprocess.run(
        [str(script), "train", "--dataset", "fashion_mnist", "--data-dir", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
        env=child_env(),
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("ember train: error:") and str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_train_digits_convnet_with_a_schedule_and_reload(tmp_path):
    output = tmp_path / "digits_convnet.ember"
    code, out, err = _run_main(
        ["train", "--dataset", "digits", "--model", "convnet", "--epochs", "8",
         "--schedule", "cosine", "--learning-rate", "0.003", "--output", str(output)]
    )  # fmt: skip
    assert code == 0, err
    accuracy = float(ACCURACY_LINE.match(_last_line(out)).group(1))
    assert accuracy >= 0.95
    model = ember.models.load_model(output)
    assert model.layers[0].kernel.shape == (3, 3, 1, 32)  # a real convnet on (8, 8, 1) images
    assert isinstance(model.optimizer.schedule, ember.optimizers.schedules.CosineDecay)
    code, out, err = _run_main(["evaluate", str(output), "--dataset", "digits"])
    assert code == 0, err
    assert float(ACCURACY_LINE.match(_last_line(out)).group(1)) == accuracy


def test_playground_command_forwards_its_options(monkeypatch):
    """`ember playground --port N --no-browser` hands exactly those options to the playground."""
    from ember import cli, playground

    seen = []
    monkeypatch.setattr(playground, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["playground", "--port", "8123", "--no-browser"]) == 0
    assert cli.main(["playground"]) == 0
    assert seen == [["--port", "8123", "--no-browser"], ["--port", "0"]]
