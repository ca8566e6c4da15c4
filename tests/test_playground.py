"""The playground's server, driven through its HTTP and WebSocket API (no browser).

One server runs for the module, on a free port of 127.0.0.1, in a background thread. Each test
opens its own WebSocket(s), i.e. its own training session(s), with aiohttp's client. Small data
(100-200 points) keeps every test well under a second of training.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from _helpers import ROOT, child_env

import ember
from ember.playground import PlaygroundConfig, TrainingSession, serve
from ember.playground import server as playground_server
from ember.playground import session as playground_session
from ember.playground.config import MAX_HIDDEN_LAYERS, MAX_NEURONS
from ember.playground.recipe import (
    EXTENT,
    build_model,
    feature_matrix,
    grid_points,
    make_data,
    python_code,
)
from ember.playground.server import MAX_MESSAGE_BYTES
from ember.playground.session import BOUNDARY_GRID, MAX_PENDING_COMMANDS

aiohttp = pytest.importorskip("aiohttp")

# Spirals that a small net learns in a few epochs (noise 0.05, squares and sines as inputs).
SPIRALS = {
    "dataset": "spirals", "samples": 400, "noise": 0.05, "seed": 0, "batch_size": 16,
    "features": ["x1", "x2", "x1_sq", "x2_sq", "sin_x1", "sin_x2"], "hidden_layers": [12, 12],
}
TIMEOUT = 30.0  # seconds a test waits for a message before failing (never reached when sound)


@pytest.fixture(scope="module")
def server():
    running = serve(port=0)
    yield running
    running.stop()


# ---------------------------------------------------------------------- client helpers
class Tab:
    """One WebSocket, as one browser tab: sends messages, waits for the ones it wants."""

    def __init__(self, ws):
        self.ws = ws
        self.errors: list[str] = []
        self.session = ""
        # messages a wait passed over (all but states: a test wants the newest state), kept for
        # a later wait — a step-through's frames can arrive before the refusal of a second one
        self.unread: list[dict] = []

    @classmethod
    async def open(cls, http, server) -> Tab:
        tab = cls(await http.ws_connect(server.url + "ws"))
        hello = await tab.wait("hello")
        tab.session = hello["session"]
        return tab

    async def send(self, message) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def wait(self, kind: str, until=lambda m: True) -> dict:
        """The next message of type ``kind`` satisfying ``until`` (errors are collected), one
        passed over by an earlier wait first."""
        for message in self.unread:
            if message["type"] == kind and until(message):
                self.unread.remove(message)
                return message
        while True:
            reply = await asyncio.wait_for(self.ws.receive(), TIMEOUT)
            assert reply.type == aiohttp.WSMsgType.TEXT, f"socket ended: {reply}"
            message = json.loads(reply.data)
            if message["type"] == "error":
                self.errors.append(message["message"])
            if message["type"] == kind and until(message):
                return message
            if message["type"] not in ("state", "error"):
                self.unread.append(message)

    async def configure(self, config: dict) -> tuple[dict, dict]:
        """Send a config; return its ready message and the first state."""
        await self.send({"type": "config", "config": config})
        ready = await self.wait("ready")
        return ready, await self.wait("state", lambda s: s["step"] == 0)

    async def error(self, message) -> str:
        """Send ``message``; return the error text the server answers with."""
        count = len(self.errors)
        await self.send(message)
        await self.wait("error", lambda m: len(self.errors) > count)
        return self.errors[-1]


async def step_to(tab: Tab, unit: str, count: int, target: int) -> dict:
    """Send ``count`` steps of ``unit``; return the state once the step counter is ``target``."""
    for _ in range(count):
        await tab.send({"type": "step", "unit": unit})
    return await tab.wait("state", lambda s: s["step"] == target and not s["playing"])


def run(scenario, server):
    """Run an async scenario with a fresh HTTP client session."""

    async def main():
        async with aiohttp.ClientSession() as http:
            return await scenario(http, server)

    return asyncio.run(main())


def boundary(state: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(state["boundary"]), dtype=np.uint8)


def download(server, session: str) -> bytes:
    with urllib.request.urlopen(f"{server.url}api/sessions/{session}/model", timeout=TIMEOUT) as r:
        assert r.headers["Content-Disposition"] == 'attachment; filename="playground.ember"'
        return r.read()


def load(data: bytes, tmp_path, name: str = "m.ember"):
    path = tmp_path / name
    path.write_bytes(data)
    return ember.models.load_model(str(path))


# ---------------------------------------------------------------------- training
def test_spiral_session_learns_and_its_boundary_moves(server):
    async def scenario(http, server):
        tab = await Tab.open(http, server)
        ready, first = await tab.configure(SPIRALS)
        after_batches = await step_to(tab, "batch", 3, target=3)
        # "epoch" finishes the epoch under way (13 batches of 16 for 200 points), then 7 more.
        trained = await step_to(tab, "epoch", 8, target=104)
        return ready, first, after_batches, trained, tab.errors

    ready, first, after_batches, trained, errors = run(scenario, server)
    assert errors == []
    assert ready["n_train"] == 200 and ready["n_test"] == 200
    assert ready["layer_sizes"] == [6, 12, 12, 1] and ready["batches_per_epoch"] == 13
    assert len(ready["points"]["train"]) == 200 and ready["extent"] == EXTENT
    assert first["step"] == 0 and first["epoch"] == 0
    assert after_batches["step"] == 3 and after_batches["epoch"] == pytest.approx(48 / 200)
    assert trained["epoch"] == 8
    # The loss falls on both sets, by far (about 0.75 -> 0.2 here).
    assert trained["train_loss"] < first["train_loss"] / 2
    assert trained["test_loss"] < first["test_loss"] / 2
    assert trained["test_accuracy"] > 0.85
    assert trained["curve"]["test"][0] == pytest.approx(first["test_loss"], abs=1e-6)
    assert trained["curve"]["test"][-1] == pytest.approx(trained["test_loss"], abs=1e-6)
    # The boundary grid changes: a large share of its cells move by more than 5%.
    before, after = boundary(first), boundary(trained)
    assert before.size == after.size == BOUNDARY_GRID**2
    assert np.mean(np.abs(after.astype(int) - before.astype(int)) > 12) > 0.2
    # Live pictures for every neuron of every layer, and per-layer gradient norms.
    assert [len(layer) for layer in trained["neurons"]] == [12, 12, 1]
    assert len(base64.b64decode(trained["neurons"][0][0]["b64"])) == (BOUNDARY_GRID // 2) ** 2
    shapes = [np.array(w["kernel"]).shape for w in trained["weights"]]
    assert shapes == [(6, 12), (12, 12), (12, 1)]
    gradients = trained["gradients"]
    assert len(gradients["norms"]) == 3 and all(n > 0 for n in gradients["norms"])
    assert gradients["verdict"] == "healthy"
    assert gradients["words"][0].startswith("No layer is flagged: gradient norms from ")
    assert "epochs=8," in trained["code"]


def test_pause_stops_training_and_reset_restores_the_start(server, tmp_path):
    async def scenario(http, server):
        tab = await Tab.open(http, server)
        _, first = await tab.configure(SPIRALS)
        await tab.send({"type": "play"})
        playing = await tab.wait("state", lambda s: s["playing"] and s["step"] > 20)
        await tab.send({"type": "pause"})
        paused = await tab.wait("state", lambda s: not s["playing"])
        # While paused nothing trains: two downloads, apart, hold the same weights.
        one = download(server, tab.session)
        two = download(server, tab.session)
        stepped = await step_to(tab, "batch", 1, target=paused["step"] + 1)
        await tab.send({"type": "reset"})
        await tab.wait("ready")
        reset = await tab.wait("state", lambda s: s["step"] == 0)
        return first, playing, paused, one, two, stepped, reset, tab.errors

    first, playing, paused, one, two, stepped, reset, errors = run(scenario, server)
    assert errors == []
    assert playing["playing"] and paused["step"] >= playing["step"]
    weights_one = load(one, tmp_path, "one.ember").get_weights()
    weights_two = load(two, tmp_path, "two.ember").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights_one, weights_two))
    assert stepped["step"] == paused["step"] + 1
    # Reset: the same seed gives exactly the starting picture again.
    assert reset["epoch"] == 0 and len(reset["curve"]["test"]) == 1
    assert reset["test_loss"] == first["test_loss"]
    assert np.array_equal(boundary(reset), boundary(first))


def test_downloaded_model_loads_and_predicts_like_the_session(server, tmp_path):
    async def scenario(http, server):
        tab = await Tab.open(http, server)
        ready, _ = await tab.configure({**SPIRALS, "features": ["x1", "x2", "x1_x2", "sin_x2"]})
        state = await step_to(tab, "epoch", 3, target=39)
        return ready, state, download(server, tab.session)

    ready, state, data = run(scenario, server)
    model = load(data, tmp_path)
    config = PlaygroundConfig.from_dict(ready["config"])
    # Same test loss over the session's own test set, and the same boundary on the grid.
    test = make_data(config)
    y_pred = model.predict(test.x_test, verbose=0)
    loss = float(model.loss(test.y_test, ember.tensor(y_pred)).data)
    assert loss == pytest.approx(state["test_loss"], abs=1e-5)
    grid = model.predict(feature_matrix(grid_points(BOUNDARY_GRID), config.features), verbose=0)
    expected = np.round(np.clip(grid[:, 0], 0, 1) * 255)
    assert np.abs(expected - boundary(state)).max() <= 1
    # The file keeps the optimizer: it can train on.
    assert model.optimizer.iterations == 39


def test_python_code_rebuilds_the_same_data_and_initial_model(server, tmp_path, monkeypatch):
    config = PlaygroundConfig.from_dict(
        {**SPIRALS, "hidden_layers": [5, 3], "activation": "relu", "optimizer": "sgd",
         "regularization": "l2", "regularization_rate": 0.001, "features": ["x1", "x2_sq"]}
    )

    async def scenario(http, server):
        tab = await Tab.open(http, server)
        await tab.configure(config.to_dict())
        return download(server, tab.session)

    start = load(run(scenario, server), tmp_path).get_weights()
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(python_code(config, epochs=0), "playground_code.py", "exec"), namespace)
    data = make_data(config)
    np.testing.assert_array_equal(namespace["x_train"], data.x_train)
    np.testing.assert_array_equal(namespace["y_test"], data.y_test)
    rebuilt = namespace["model"].get_weights()
    assert [w.shape for w in rebuilt] == [(2, 5), (5,), (5, 3), (3,), (3, 1), (1,)]
    assert all(np.array_equal(a, b) for a, b in zip(rebuilt, start))
    assert (tmp_path / "playground.ember").exists()
    # The digits recipe too (one epoch would train; zero keeps the test fast).
    digits = PlaygroundConfig.from_dict({"dataset": "digits", "hidden_layers": [4]})
    namespace = {}
    exec(compile(python_code(digits, epochs=0), "digits_code.py", "exec"), namespace)
    assert namespace["x_train"].shape == make_data(digits).x_train.shape
    assert namespace["model"].layers[-1].units == 10


def test_two_tabs_train_independently_and_closing_a_tab_ends_its_session(server):
    async def scenario(http, server):
        first = await Tab.open(http, server)
        second = await Tab.open(http, server)
        await first.configure(SPIRALS)
        _, xor_start = await second.configure({"dataset": "xor", "samples": 100,
                                               "hidden_layers": [3]})
        await step_to(first, "epoch", 2, target=26)
        # The xor tab has not moved: its own state, asked for by a pause, is still at step 0.
        await second.send({"type": "pause"})
        xor_now = await second.wait("state")
        sessions = dict(server_sessions(server))
        await first.ws.close()
        for _ in range(200):  # the server closes the session once it sees the socket close
            if sessions[first.session].closed:
                break
            await asyncio.sleep(0.05)
        return first, second, xor_start, xor_now, sessions, server_sessions(server)

    first, second, xor_start, xor_now, before, after = run(scenario, server)
    assert first.session != second.session
    assert xor_now["step"] == 0 and xor_now["test_loss"] == xor_start["test_loss"]
    assert first.session in before and second.session in before
    assert first.session not in after
    assert before[first.session].closed
    with pytest.raises(urllib.error.HTTPError) as info:
        download(server, first.session)
    assert info.value.code == 404


def server_sessions(server) -> dict:
    """The server's open sessions (for the clean-up checks)."""
    return server.sessions


# ---------------------------------------------------------------------- the URL
def test_config_round_trips_through_the_url():
    config = PlaygroundConfig.from_dict({
        "dataset": "circles", "noise": 0.35, "train_ratio": 0.7, "samples": 321, "seed": 42,
        "features": ["sin_x2", "x1"], "hidden_layers": [], "activation": "leaky_relu",
        "optimizer": "rmsprop", "learning_rate": 0.003, "regularization": "l1",
        "regularization_rate": 0.0001, "batch_size": 7,
    })
    query = config.to_query()
    assert "hidden_layers=&" in query and "features=x1,sin_x2&" in query
    assert PlaygroundConfig.from_query(query) == config
    assert PlaygroundConfig.from_query("?" + query) == config
    assert PlaygroundConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert PlaygroundConfig.from_query("") == PlaygroundConfig()


def test_the_server_parses_a_link_and_names_the_session_query(server):
    config = PlaygroundConfig.from_dict({"dataset": "xor", "hidden_layers": [6, 2], "seed": 9})
    with urllib.request.urlopen(server.url + "api/config?" + config.to_query()) as reply:
        body = json.load(reply)
    assert body["query"] == config.to_query()
    assert PlaygroundConfig.from_dict(body["config"]) == config
    assert "synthetic.xor(n_samples=400, noise=0.1, seed=9)" in body["code"]

    async def scenario(http, server):
        tab = await Tab.open(http, server)
        ready, _ = await tab.configure(config.to_dict())
        return ready

    assert run(scenario, server)["query"] == config.to_query()


def test_the_page_and_its_files_are_served_from_the_package(server):
    with urllib.request.urlopen(server.url) as reply:
        page = reply.read().decode()
    assert 'id="boundary"' in page and "/static/app.js" in page
    for name in ("app.js", "style.css"):
        with urllib.request.urlopen(server.url + "static/" + name) as reply:
            assert reply.status == 200 and len(reply.read()) > 1000
    # Offline: nothing is loaded from another host.
    for text in (page, (ROOT / "ember/playground/static/app.js").read_text()):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
    with urllib.request.urlopen(server.url + "api/options") as reply:
        options = json.load(reply)
    assert "relu" in options["activations"] and "adam" in options["optimizers"]
    assert options["limits"]["MAX_NEURONS"] == MAX_NEURONS


# ---------------------------------------------------------------------- bad input
BAD_CONFIGS = [
    ({"hidden_layers": [10**6]}, "hidden_layers[0] must be an integer from 1 to 32"),
    ({"hidden_layers": [2] * 10**4}, f"at most {MAX_HIDDEN_LAYERS} (MAX_HIDDEN_LAYERS)"),
    ({"dataset": "moons"}, "dataset must be one of spirals, circles, xor, blobs, digits"),
    ({"activation": "rleu"}, "unknown activation 'rleu'. Did you mean 'relu'?"),
    ({"optimizer": "adamm"}, "unknown optimizer 'adamm'. Did you mean 'adam'?"),
    ({"learning_rate": -0.1}, "learning_rate must be a finite number > 0"),
    ({"regularization_rate": -1}, "regularization_rate must be a finite number >= 0"),
    ({"batch_size": 0}, "batch_size must be an integer from 1 to 1024"),
    ({"samples": 10**9}, "samples must be an integer from 20 to 2000"),
    ({"features": []}, "features must be a non-empty list"),
    ({"features": ["x3"]}, "unknown feature 'x3'"),
    ({"noise": "lots"}, "noise must be a finite number >= 0 and <= 1"),
    ({"layers": [3]}, "unknown setting(s) 'layers'"),
]


def test_bad_messages_get_clear_errors_and_the_server_keeps_serving(server):
    async def scenario(http, server):
        tab = await Tab.open(http, server)
        answers = {"before config": await tab.error({"type": "play"})}
        answers["malformed"] = await tab.error('{"type": "config", ')
        answers["not an object"] = await tab.error("[1, 2]")
        answers["unknown type"] = await tab.error({"type": "explode"})
        answers["bad unit"] = await tab.error({"type": "step", "unit": "week"})
        answers["config not an object"] = await tab.error({"type": "config", "config": 3})
        for i, (config, _) in enumerate(BAD_CONFIGS):
            answers[i] = await tab.error({"type": "config", "config": config})
        # Still serving this tab: a good config trains.
        await tab.configure({"dataset": "xor", "samples": 40})
        state = await step_to(tab, "batch", 1, target=1)
        return answers, state

    answers, state = run(scenario, server)
    assert "cannot play before a configuration is chosen" in answers["before config"]
    assert answers["malformed"].startswith("malformed JSON from the page: Expecting")
    assert 'whose "type" is one of config, play, pause, step, reset' in answers["not an object"]
    assert "got '{\"type\": \"explode\"}'" in answers["unknown type"]
    assert "unit must be \"batch\" or \"epoch\", got 'week'" in answers["bad unit"]
    assert "expected a JSON object (dict) of settings, got int" in answers["config not an object"]
    for i, (_, expected) in enumerate(BAD_CONFIGS):
        assert expected in answers[i], (answers[i], expected)
        assert answers[i].startswith("PlaygroundConfig")
    assert state["step"] == 1


def test_a_diverging_model_pauses_with_a_message(server):
    async def scenario(http, server):
        tab = await Tab.open(http, server)
        await tab.configure({"dataset": "blobs", "samples": 40, "hidden_layers": [32] * 6,
                             "activation": "relu", "optimizer": "sgd", "learning_rate": 10})
        await tab.send({"type": "play"})
        message = await tab.wait("error")
        paused = await tab.wait("state", lambda s: not s["playing"])
        await tab.configure({"dataset": "xor", "samples": 40})
        return message, paused, await step_to(tab, "batch", 1, target=1)

    message, paused, state = run(scenario, server)
    assert message["message"].startswith("training paused: the loss became nan at step ")
    assert message["message"].endswith("; lower the learning rate and reset")
    assert not paused["playing"] and state["step"] == 1


def test_oversized_messages_and_foreign_hosts_are_refused(server):
    async def scenario(http, server):
        tab = await Tab.open(http, server)
        await tab.send("x" * (MAX_MESSAGE_BYTES + 1))
        closed = await asyncio.wait_for(tab.ws.receive(), TIMEOUT)
        again = await Tab.open(http, server)  # the server itself is fine
        await again.configure({"dataset": "circles", "samples": 40})
        return closed, tab.ws.close_code

    closed, code = run(scenario, server)
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                           aiohttp.WSMsgType.ERROR)
    assert code == 1009  # "message too big"
    for headers in ({"Host": "evil.test"}, {"Origin": "http://evil.test"}):
        request = urllib.request.Request(server.url + "api/options", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request)
        assert info.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "api/config?hidden_layers=1000000")
    assert info.value.code == 400
    assert "MAX_NEURONS" in json.load(info.value)["error"]
    with pytest.raises(urllib.error.HTTPError) as info:
        download(server, "no-such-session")
    assert info.value.code == 404


def test_the_number_of_tabs_is_bounded_and_stopping_closes_every_session(monkeypatch):
    monkeypatch.setattr(playground_server, "MAX_SESSIONS", 2)

    async def scenario(http, fresh):
        tabs = [await Tab.open(http, fresh) for _ in range(2)]
        await tabs[0].configure({"dataset": "xor", "samples": 40})
        extra = await http.ws_connect(fresh.url + "ws")
        refused = json.loads((await asyncio.wait_for(extra.receive(), TIMEOUT)).data)
        ended = await asyncio.wait_for(extra.receive(), TIMEOUT)
        return refused, ended, dict(server_sessions(fresh))

    fresh = serve(port=0)
    try:
        refused, ended, sessions = run(scenario, fresh)
    finally:
        fresh.stop()
    assert refused == {"type": "error", "message": "too many playground tabs are open "
                       "(MAX_SESSIONS = 2); close one and reload"}
    assert ended.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert len(sessions) == 2 and all(session.closed for session in sessions.values())
    assert server_sessions(fresh) == {}


# ---------------------------------------------------------------------- pieces
def test_gradient_health_words_flag_a_deep_sigmoid_net():
    config = PlaygroundConfig.from_dict({"hidden_layers": [8] * 6, "activation": "sigmoid"})
    session = TrainingSession(config)
    try:
        gradients = session.state()["gradients"]
    finally:
        session.close()
    assert gradients["verdict"] == "vanishing"
    assert gradients["words"][0].startswith("the gradient vanishes with depth")
    assert "at hidden_1" in gradients["words"][0]


def test_session_without_a_server():
    messages: list[dict] = []
    config = PlaygroundConfig.from_dict({"dataset": "digits", "hidden_layers": [8],
                                         "train_ratio": 0.2, "batch_size": 64})
    session = TrainingSession(config, publish=messages.append)
    try:
        start = session.state()
        session.step("epoch")
        after = session.state()
    finally:
        session.close()
    assert session.closed
    kinds = [m["type"] for m in messages]
    assert kinds[:2] == ["ready", "state"] and "error" not in kinds
    ready = messages[0]
    assert ready["layer_sizes"] == [64, 8, 10] and ready["n_train"] == 359
    assert start["boundary"] is None and len(start["predictions"]) == 24
    assert after["step"] == 6 and after["test_loss"] < start["test_loss"]
    # Digits neurons show their mean output per class: ten values each.
    assert len(base64.b64decode(after["neurons"][0][0]["b64"])) == 10
    with pytest.raises(RuntimeError, match="closed"):
        session.play()
    # A page cannot queue unbounded work: past MAX_PENDING_COMMANDS commands are refused, and
    # closing does not wait for the queued ones.
    busy = TrainingSession(PlaygroundConfig.from_dict({"samples": 400}))
    with pytest.raises(RuntimeError, match=r"already waiting \(MAX_PENDING_COMMANDS\)"):
        for _ in range(10 * MAX_PENDING_COMMANDS):
            busy.step("epoch")
    busy.close()
    assert busy.closed
    with pytest.raises(ValueError, match="unit must be 'batch' or 'epoch'"):
        TrainingSession().step("year")


def test_build_model_leaves_embers_generator_alone():
    ember.manual_seed(5)
    expected = ember.random.normal((3,)).numpy()
    ember.manual_seed(5)
    messages: list[dict] = []
    session = TrainingSession(PlaygroundConfig.from_dict({"samples": 40}), messages.append)
    session.state()
    session.close()
    assert np.array_equal(ember.random.normal((3,)).numpy(), expected)
    model = build_model(PlaygroundConfig(), 4, 2)
    assert model.layers[-1].units == 1


def test_ember_playground_command_prints_its_url_and_stops_on_ctrl_c():
    code = "import sys; from ember.playground import main; sys.exit(main(['--no-browser']))"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=child_env(), cwd=ROOT,
    )
    try:
        line = child.stdout.readline()
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url + "api/options", timeout=TIMEOUT) as reply:
            assert json.load(reply)["defaults"]["dataset"] == "spirals"
        child.send_signal(signal.SIGINT)
        assert child.wait(TIMEOUT) == 0, child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# ---------------------------------------------------------------------- backprop step by step
# A net small enough to read: x (4, 2), two Dense layers, the sigmoid output and its loss.
SMALL = {"dataset": "xor", "samples": 100, "seed": 3, "features": ["x1", "x2"],
         "hidden_layers": [3], "batch_size": 10}
SVG_NS = "{http://www.w3.org/2000/svg}"


def graph_nodes(tensor) -> int:
    """The number of nodes of the graph behind ``tensor``, counted independently."""
    seen, stack = {id(tensor)}, [tensor]
    while stack:
        for parent in stack.pop()._parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


def loss_of_first_samples(model, config: PlaygroundConfig, n: int):
    """The training loss of ``model`` on the first ``n`` training samples, as the session
    computes it (a new tensor graph; nothing is trained)."""
    data = make_data(config)
    x, y = data.x_train[:n], data.y_train[:n]
    return model.compute_loss(x, y, model(x, training=True), training=True)


def test_backprop_draws_one_frame_per_node_for_the_current_weights(
    server, tmp_path, monkeypatch
):
    # Two requests in one test: the one-a-second limit is lifted here (tested below).
    monkeypatch.setattr(playground_session, "MIN_BACKPROP_INTERVAL", 0.0)
    config = PlaygroundConfig.from_dict(SMALL)

    async def scenario(http, server):
        tab = await Tab.open(http, server)
        await tab.configure(SMALL)
        await tab.send({"type": "backprop"})
        first = await tab.wait("backprop")
        await step_to(tab, "batch", 5, target=5)
        await tab.send({"type": "backprop", "samples": 2})
        later = await tab.wait("backprop")
        return first, later, download(server, tab.session), tab.errors

    first, later, trained, errors = run(scenario, server)
    assert errors == []
    data = make_data(config)
    model = build_model(config, data.x_train.shape[1], data.n_classes)
    expected = graph_nodes(loss_of_first_samples(model, config, 4))
    # x; kernel, bias, linear per layer and the hidden tanh; the output sigmoid fused into the
    # cross-entropy; the mean over the output and over the batch
    assert expected == 11
    assert first["nodes"] == len(first["frames"]) == expected
    assert first["samples"] == 4 and first["step"] == 0
    assert first["labels"] == data.y_train[:4].tolist()
    # Each frame is a well-formed SVG of the whole graph with one node highlighted, and
    # the frames visit every node once, starting from the loss (the last node).
    current = []
    for k, frame in enumerate(first["frames"]):
        root = ET.fromstring(frame)
        assert root.tag == SVG_NS + "svg" and root.get("data-step") == str(k)
        boxes = root.findall(f".//{SVG_NS}g[@data-node]")
        assert len(boxes) == expected
        highlighted = [b.get("data-node") for b in boxes if "current" in b.get("class").split()]
        assert len(highlighted) == 1
        current.append(highlighted[0])
        caption = [t.text for t in root.iter(SVG_NS + "text") if t.get("class") == "eg-caption"]
        assert caption[0].startswith(f"Step {k + 1} of {expected}: {highlighted[0]} ")
    assert current[0] == f"n{expected - 1}"
    assert sorted(current) == sorted(f"n{i}" for i in range(expected))
    # The loss drawn is the model's at the weights of that moment: at the start ...
    start_loss = float(loss_of_first_samples(model, config, 4).data)
    assert first["loss"] == pytest.approx(start_loss, rel=1e-6)
    assert f"= {start_loss:.4g}" in first["frames"][0]
    # ... and after five steps (the downloaded model holds the weights after step 5).
    now = load(trained, tmp_path)
    assert later["step"] == 5 and later["samples"] == 2 and later["nodes"] == expected
    later_loss = float(loss_of_first_samples(now, config, 2).data)
    assert later["loss"] == pytest.approx(later_loss, rel=1e-6)
    assert abs(later_loss - start_loss) > 1e-3


def test_backprop_leaves_the_training_as_it_was(server, tmp_path, monkeypatch):
    monkeypatch.setattr(playground_session, "MIN_BACKPROP_INTERVAL", 0.0)

    # With an L2 penalty: its terms are part of the graph drawn, and of the loss trained.
    config = {**SMALL, "regularization": "l2", "regularization_rate": 0.01}

    async def train(http, server, with_backprop: bool):
        tab = await Tab.open(http, server)
        await tab.configure(config)
        losses = []
        for step in range(1, 9):
            if with_backprop and step in (3, 6):
                await tab.send({"type": "backprop"})
                await tab.wait("backprop")
            losses.append((await step_to(tab, "batch", 1, target=step))["train_loss"])
        return losses, download(server, tab.session), tab.errors

    async def scenario(http, server):
        return await train(http, server, False), await train(http, server, True)

    (plain, plain_model, e1), (looked, looked_model, e2) = run(scenario, server)
    assert e1 == [] and e2 == []
    assert looked == plain  # the same numbers, to the last bit
    a = load(plain_model, tmp_path, "a.ember")
    b = load(looked_model, tmp_path, "b.ember")
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    assert a.optimizer.iterations == b.optimizer.iterations == 8
    # Ember's generator is left alone, and so are the model's .grad.
    session = TrainingSession(PlaygroundConfig.from_dict(SMALL))
    try:
        session.state()
        ember.manual_seed(11)
        expected = ember.random.normal((3,)).numpy()
        ember.manual_seed(11)
        assert session.backprop()["nodes"] == 11
        assert np.array_equal(ember.random.normal((3,)).numpy(), expected)
        assert all(v.grad is None for v in session._run_state.variables)
    finally:
        session.close()


def test_backprop_refusals_are_clear_and_do_not_stop_the_training(server, monkeypatch):
    async def scenario(http, server):
        tab = await Tab.open(http, server)
        monkeypatch.setattr(playground_session, "MIN_BACKPROP_INTERVAL", 0.0)
        answers = {"before config": await tab.error({"type": "backprop"})}
        await tab.configure(SMALL)
        answers["samples"] = await tab.error({"type": "backprop", "samples": 1000})
        answers["not a number"] = await tab.error({"type": "backprop", "samples": "four"})
        # One request at a time, and a pause between two (a new tab: none asked before): the
        # second of two at once is refused (as still being drawn, or as too soon), and so is
        # one within the pause.
        monkeypatch.setattr(playground_session, "MIN_BACKPROP_INTERVAL", 60.0)
        other = await Tab.open(http, server)
        await other.configure(SMALL)
        await other.send({"type": "backprop"})
        answers["at once"] = await other.error({"type": "backprop"})
        await other.wait("backprop")
        answers["too soon"] = await other.error({"type": "backprop"})
        monkeypatch.setattr(playground_session, "MIN_BACKPROP_INTERVAL", 0.0)
        # Too large, while playing: refused, and the training plays on.
        await tab.send({"type": "play"})
        await tab.wait("state", lambda s: s["playing"] and s["step"] > 0)
        monkeypatch.setattr(playground_session, "MAX_BACKPROP_NODES", 10)
        answers["nodes"] = await tab.error({"type": "backprop"})
        monkeypatch.setattr(playground_session, "MAX_BACKPROP_NODES", 300)
        monkeypatch.setattr(playground_session, "MAX_BACKPROP_BYTES", 10_000)
        answers["bytes"] = await tab.error({"type": "backprop"})
        reached = (await tab.wait("state", lambda s: s["playing"]))["step"]
        playing = await tab.wait("state", lambda s: s["playing"] and s["step"] > reached + 5)
        await tab.send({"type": "pause"})
        await tab.wait("state", lambda s: not s["playing"])
        return answers, playing, tab

    answers, playing, tab = run(scenario, server)
    assert answers["before config"] == "cannot backprop before a configuration is chosen"
    assert answers["samples"] == ("TrainingSession.request_backprop: samples must be an integer "
                                  "from 1 to 16 (MAX_BACKPROP_SAMPLES), got 1000")
    assert answers["not a number"].endswith("got 'four'")
    too_soon = ("TrainingSession.request_backprop: at most one step-through per 60 s "
                "(MIN_BACKPROP_INTERVAL); try again in a moment")
    assert answers["at once"] in (too_soon, "TrainingSession.request_backprop: the previous "
                                  "step-through is still being drawn; wait for it")
    assert answers["too soon"] == too_soon
    assert answers["nodes"].startswith("backprop: this model's loss has a graph of more than "
                                       "10 nodes (MAX_BACKPROP_NODES)")
    assert re.fullmatch(r"backprop: the 11 frames of this model would be \d+\.\d MB of SVG, "
                        r"more than MAX_BACKPROP_BYTES \(0\.01 MB\); use fewer hidden layers",
                        answers["bytes"])
    assert playing["playing"]
    assert all(m.startswith(("cannot backprop", "TrainingSession.request_backprop", "backprop:"))
               for m in tab.errors)
