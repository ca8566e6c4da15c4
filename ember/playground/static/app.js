// The Ember playground page. It trains nothing itself: it sends the configuration and the
// commands (play, pause, step, reset) to the server over a WebSocket, and draws the states the
// server streams back from the Ember model training in Python.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const BLUE = [8, 119, 189];
  const ORANGE = [245, 147, 34];
  const WHITE = [255, 255, 255];
  const PALETTE = ["#0877bd", "#f59322", "#2ca02c", "#9467bd", "#d62728", "#8c564b", "#17becf"];
  const FEATURE_LABELS = {
    x1: "x\u2081", x2: "x\u2082", x1_sq: "x\u2081\u00b2", x2_sq: "x\u2082\u00b2",
    x1_x2: "x\u2081x\u2082", sin_x1: "sin x\u2081", sin_x2: "sin x\u2082",
  };

  const app = {
    options: null,     // /api/options: names, limits, defaults
    ws: null,
    session: null,     // this tab's session id (for the model download)
    ready: null,       // the last "ready" message: data, shapes, input thumbnails
    state: null,       // the last "state" message
    features: new Set(),
    playing: false,
    sendTimer: null,   // a change waiting to be sent (null when none)
    keepError: false,  // an invalid link's error outlives the first configuration
    nodes: [],         // nodes[column][i]: the canvas of each neuron (column 0: the inputs)
    lines: [],         // lines[layer][i][j]: the SVG line of each weight
    // The backprop step-through: its frames (SVG), the one shown, and what they were drawn
    // for (the step counter; stale once the model is rebuilt or reset).
    bp: { frames: [], at: 0, step: null, loss: null, samples: 0, pending: false, stale: false,
      readyAt: 0, timer: null },
  };

  // ------------------------------------------------------------------ small helpers
  function showError(message, append) {
    const box = $("error");
    box.textContent = append && !box.hidden ? box.textContent + "\n" + message : message;
    box.hidden = false;
  }

  function clearError() {
    const box = $("error");
    box.hidden = true;
    box.textContent = "";
  }

  function colour(v) {
    // v in [-1, 1]: orange for negative, white at zero, blue for positive (as TF Playground)
    const t = Math.min(1, Math.abs(v));
    const end = v < 0 ? ORANGE : BLUE;
    return [0, 1, 2].map((i) => Math.round(WHITE[i] + (end[i] - WHITE[i]) * t));
  }

  function decode(b64) {
    const text = atob(b64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || !Number.isFinite(value)) return "NaN";
    return value.toFixed(digits === undefined ? 4 : digits);
  }

  function asNumber(text) {
    // The server checks every value; a text that is no number goes as text so its error
    // message can quote what was typed.
    const t = String(text).trim();
    const v = Number(t);
    return t !== "" && Number.isFinite(v) ? v : t;
  }

  function parseLayers(text) {
    const items = String(text).split(",").map((s) => s.trim()).filter((s) => s !== "");
    return items.map(asNumber);
  }

  async function fetchJSON(url) {
    const reply = await fetch(url);
    const body = await reply.json();
    if (!reply.ok) throw new Error(body.error || reply.statusText);
    return body;
  }

  // ------------------------------------------------------------------ the form
  function fillSelect(id, names) {
    const select = $(id);
    select.innerHTML = "";
    for (const name of names) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      select.appendChild(option);
    }
  }

  function setValue(id, value) {
    const element = $(id);
    if (document.activeElement !== element) element.value = value;  // never under the cursor
  }

  function fillForm(config) {
    setValue("dataset", config.dataset);
    setValue("noise", config.noise);
    $("noise-value").textContent = config.noise;
    setValue("train-ratio", Math.round(config.train_ratio * 100));
    $("train-ratio-value").textContent = Math.round(config.train_ratio * 100) + "%";
    setValue("samples", config.samples);
    setValue("seed", config.seed);
    setValue("hidden-layers", config.hidden_layers.join(","));
    setValue("activation", config.activation);
    setValue("optimizer", config.optimizer);
    setValue("learning-rate", config.learning_rate);
    setValue("regularization", config.regularization);
    setValue("reg-rate", config.regularization_rate);
    setValue("batch-size", config.batch_size);
    app.features = new Set(config.features);
  }

  function readForm() {
    return {
      dataset: $("dataset").value,
      noise: asNumber($("noise").value),
      train_ratio: asNumber($("train-ratio").value) / 100,
      samples: asNumber($("samples").value),
      seed: asNumber($("seed").value),
      features: app.options.features.filter((f) => app.features.has(f)),
      hidden_layers: parseLayers($("hidden-layers").value),
      activation: $("activation").value,
      optimizer: $("optimizer").value,
      learning_rate: asNumber($("learning-rate").value),
      regularization: $("regularization").value,
      regularization_rate: asNumber($("reg-rate").value),
      batch_size: asNumber($("batch-size").value),
    };
  }

  function scheduleConfig() {
    clearTimeout(app.sendTimer);
    app.sendTimer = setTimeout(sendConfig, 250);
  }

  function sendConfig() {
    clearTimeout(app.sendTimer);
    app.sendTimer = null;
    send({ type: "config", config: readForm() });
  }

  function send(message) {
    return sendRaw(JSON.stringify(message));
  }

  function sendRaw(text) {
    if (app.ws && app.ws.readyState === WebSocket.OPEN) {
      app.ws.send(text);
      return true;
    }
    showError("not connected to the playground server; reload the page");
    return false;
  }

  function changeLayers(edit) {
    const layers = parseLayers($("hidden-layers").value).filter((n) => Number.isInteger(n));
    edit(layers);
    $("hidden-layers").value = layers.join(",");
    scheduleConfig();
  }

  function bindControls() {
    const inputs = ["dataset", "noise", "train-ratio", "samples", "seed", "hidden-layers",
      "activation", "optimizer", "learning-rate", "regularization", "reg-rate", "batch-size"];
    for (const id of inputs) {
      $(id).addEventListener("input", scheduleConfig);
      $(id).addEventListener("change", scheduleConfig);
    }
    $("noise").addEventListener("input", () => {
      $("noise-value").textContent = $("noise").value;
    });
    $("train-ratio").addEventListener("input", () => {
      $("train-ratio-value").textContent = $("train-ratio").value + "%";
    });
    $("play").addEventListener("click", () => send({ type: app.playing ? "pause" : "play" }));
    $("step-batch").addEventListener("click", () => send({ type: "step", unit: "batch" }));
    $("step-epoch").addEventListener("click", () => send({ type: "step", unit: "epoch" }));
    $("reset").addEventListener("click", () => send({ type: "reset" }));
    $("add-layer").addEventListener("click", () => changeLayers((l) => {
      l.push(l.length ? l[l.length - 1] : 4);
    }));
    $("remove-layer").addEventListener("click", () => changeLayers((l) => l.pop()));
    $("show-test").addEventListener("change", drawBoundary);
    $("error").addEventListener("click", clearError);
    $("copy-link").addEventListener("click", copyLink);
    bindBackprop();
  }

  async function copyLink() {
    try {
      await navigator.clipboard.writeText(location.href);
      $("copied").hidden = false;
      setTimeout(() => { $("copied").hidden = true; }, 1500);
    } catch (err) {
      window.prompt("Copy this link:", location.href);
    }
  }

  function setPlaying(playing) {
    app.playing = playing;
    const button = $("play");
    button.dataset.playing = String(playing);
    button.textContent = playing ? "\u275a\u275a Pause" : "\u25b6 Play";
  }

  // ------------------------------------------------------------------ the connection
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws");
    app.ws = ws;
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        showError("the server sent something that is not JSON: " + err);
        return;
      }
      handle(message);
    };
    ws.onclose = () => {
      setPlaying(false);
      showError("The connection to the playground server closed; reload the page to start "
        + "again.", true);
    };
  }

  function handle(message) {
    if (message.type === "hello") {
      app.session = message.session;
      $("download").href = "/api/sessions/" + message.session + "/model";
      sendConfig();
    } else if (message.type === "ready") {
      onReady(message);
    } else if (message.type === "state") {
      onState(message);
    } else if (message.type === "backprop") {
      onBackprop(message);
    } else if (message.type === "error" && message.about === "backprop") {
      onBackpropError(message.message);
    } else if (message.type === "error") {
      showError(message.message);
    }
  }

  function onReady(message) {
    if (app.keepError) app.keepError = false;
    else clearError();
    app.ready = message;
    app.state = null;
    history.replaceState(null, "", "?" + message.query);
    // The form shows the server's normalized config, unless the user changed it since.
    if (app.sendTimer === null) fillForm(message.config);
    document.body.dataset.query = message.query;
    const digits = message.config.dataset === "digits";
    $("data-hint").textContent = digits
      ? "The 1,797 bundled 8\u00d78 digits (64 pixel inputs, 10 classes); points, noise and "
        + "features do not apply."
      : message.n_train + " training and " + message.n_test + " test points; "
        + message.batches_per_epoch + " batches per epoch.";
    for (const id of ["noise", "samples"]) $(id).disabled = digits;
    $("show-test-label").hidden = digits;
    buildNetwork(message);
    if (app.bp.frames.length) app.bp.stale = true;  // a new model (new settings, or reset)
    describeBackprop();
  }

  function onState(state) {
    app.state = state;
    setPlaying(state.playing);
    $("epoch").textContent = fmt(state.epoch, 2);
    $("steps").textContent = state.step;
    document.body.dataset.step = state.step;
    $("test-loss").textContent = fmt(state.test_loss);
    $("train-loss").textContent = fmt(state.train_loss);
    $("test-acc").textContent = fmt(state.test_accuracy, 3);
    $("train-acc").textContent = fmt(state.train_accuracy, 3);
    drawBoundary();
    drawNeurons(state);
    updateLinks(state);
    drawCurve(state);
    drawGradients(state);
    $("code").textContent = state.code;
    describeBackprop();
  }

  // ------------------------------------------------------------------ backprop step by step
  function bindBackprop() {
    const panel = $("backprop");
    panel.addEventListener("toggle", () => {
      if (panel.open && (!app.bp.frames.length || isStale())) requestBackprop();
    });
    $("bp-refresh").addEventListener("click", requestBackprop);
    $("bp-first").addEventListener("click", () => showFrame(0));
    $("bp-prev").addEventListener("click", () => showFrame(app.bp.at - 1));
    $("bp-next").addEventListener("click", () => showFrame(app.bp.at + 1));
    $("bp-last").addEventListener("click", () => showFrame(app.bp.frames.length - 1));
    // Keys step while the focus is in the panel (a button, the picture), never in a form field.
    $("bp-frame").tabIndex = 0;
    panel.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: -1, ArrowRight: 1 };
      let target = null;
      if (event.key in moves) target = app.bp.at + moves[event.key];
      else if (event.key === "Home") target = 0;
      else if (event.key === "End") target = app.bp.frames.length - 1;
      if (target === null || !app.bp.frames.length) return;
      event.preventDefault();
      showFrame(target);
    });
  }

  function bpStatus(text, kind) {
    const status = $("bp-status");
    if (status.textContent !== text) status.textContent = text;
    status.className = "bp-status" + (kind ? " " + kind : "");
  }

  function requestBackprop() {
    const bp = app.bp;
    if (bp.pending || bp.timer !== null) return;
    if (!app.ready) {
      bpStatus("No model yet: choose a configuration first.", "error");
      return;
    }
    // The server takes one request a second per tab (it refuses more): wait for the turn.
    const wait = bp.readyAt - performance.now();
    if (wait > 0) {
      bp.timer = setTimeout(() => { bp.timer = null; requestBackprop(); }, wait);
      return;
    }
    const limits = app.options.backprop;
    if (!send({ type: "backprop", samples: limits.samples })) return;
    bp.pending = true;
    bp.readyAt = performance.now() + limits.min_interval * 1000 + 200;  // 200: a margin
    $("bp-refresh").disabled = true;
    bpStatus("Drawing backpropagation for the current weights\u2026");
  }

  function backpropDone() {
    // The button comes back once the server will take the next request.
    app.bp.pending = false;
    const wait = Math.max(0, app.bp.readyAt - performance.now());
    setTimeout(() => { if (!app.bp.pending) $("bp-refresh").disabled = false; }, wait);
  }

  function onBackprop(message) {
    Object.assign(app.bp, {
      frames: message.frames, step: message.step, loss: message.loss,
      samples: message.samples, stale: false,
    });
    backpropDone();
    $("bp-samples").textContent = message.samples;
    $("backprop").dataset.nodes = message.nodes;
    showFrame(0);
    describeBackprop();
  }

  function onBackpropError(text) {
    backpropDone();
    bpStatus(text, "error");
  }

  function isStale() {
    const bp = app.bp;
    return bp.stale || (app.state !== null && app.state.step !== bp.step);
  }

  function describeBackprop() {
    // What the frames show, and whether the model has moved on since they were drawn.
    const bp = app.bp;
    if (!bp.frames.length || bp.pending) return;
    let text = "Loss " + fmt(bp.loss) + " on the first " + bp.samples + " training samples, "
      + "with the weights after step " + bp.step + ".";
    const stale = isStale();
    if (stale) {
      text += " The model has changed since: press \u201cDraw for the current weights\u201d "
        + "to follow it.";
    }
    bpStatus(text, stale ? "stale" : "");
  }

  function showFrame(k) {
    const frames = app.bp.frames;
    if (!frames.length) return;
    const at = Math.max(0, Math.min(frames.length - 1, k));
    app.bp.at = at;
    const view = $("bp-frame");
    view.innerHTML = frames[at];  // SVG drawn by Ember, every text in it escaped
    view.dataset.at = at;
    const lines = Array.from(view.querySelectorAll(".eg-caption"));
    const caption = $("bp-caption");
    caption.innerHTML = "";
    for (const line of lines) {
      const div = document.createElement("div");
      div.textContent = line.textContent;
      caption.appendChild(div);
    }
    const svg = view.querySelector("svg");
    if (svg && lines.length) cropCaption(svg, lines[0]);
    $("bp-counter").textContent = "node " + (at + 1) + " of " + frames.length;
  }

  function cropCaption(svg, first) {
    // The caption sits under the graph in the SVG; shown above it as text, it is cut off.
    const box = svg.viewBox.baseVal;
    const bottom = parseFloat(first.getAttribute("y")) - 18;  // 18: one caption line
    if (box && bottom > 0 && bottom < box.height) {
      svg.setAttribute("viewBox", [box.x, box.y, box.width, bottom].join(" "));
      svg.setAttribute("height", Math.round(bottom));
    }
  }

  // ------------------------------------------------------------------ the network diagram
  function nodeCanvas(size, title) {
    const canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    canvas.style.width = size + "px";
    canvas.style.height = size + "px";
    canvas.title = title;
    return canvas;
  }

  function column(title) {
    const div = document.createElement("div");
    div.className = "column";
    const head = document.createElement("div");
    head.className = "column-title";
    head.innerHTML = title;
    div.appendChild(head);
    return [div, head];
  }

  function buildNetwork(ready) {
    const columns = $("columns");
    columns.innerHTML = "";
    app.nodes = [];
    const digits = ready.config.dataset === "digits";
    const [inputColumn, inputNodes] = digits ? pixelColumn(ready) : featureColumn(ready);
    columns.appendChild(inputColumn);
    app.nodes.push(inputNodes);
    const sizes = ready.layer_sizes;
    for (let k = 1; k < sizes.length; k++) {
      const [div, canvases] = layerColumn(ready, k, digits);
      columns.appendChild(div);
      app.nodes.push(canvases);
    }
    buildLinks();
  }

  function pixelColumn(ready) {
    // The digits' 64 pixels are one node (showing the mean test digit).
    const [div] = column("inputs");
    const node = document.createElement("div");
    node.className = "node";
    const canvas = nodeCanvas(36, "the 64 pixels of a digit");
    drawMeanDigit(canvas, ready);
    node.append(canvas);
    div.appendChild(node);
    return [div, [canvas]];
  }

  function featureColumn(ready) {
    // All seven features with a checkbox each; the chosen ones show their values.
    const [div] = column("inputs");
    const canvases = [];
    const byName = {};
    ready.inputs.forEach((input) => { byName[input.name] = input; });
    for (const name of app.options.features) {
      const node = document.createElement("div");
      node.className = "node" + (byName[name] ? "" : " off");
      const label = document.createElement("label");
      label.className = "feature-label";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = "feature-" + name;
      box.checked = app.features.has(name);  // the form, which may be ahead of the model
      box.addEventListener("change", () => {
        if (box.checked) app.features.add(name);
        else app.features.delete(name);
        scheduleConfig();
      });
      label.append(box, FEATURE_LABELS[name]);
      const canvas = nodeCanvas(36, name);
      if (byName[name]) {
        drawThumbnail(canvas, byName[name].b64, 20, 20);
        canvases.push(canvas);
      }
      node.append(label, canvas);
      div.appendChild(node);
    }
    return [div, canvases];
  }

  function layerColumn(ready, k, digits) {
    // Column k (1-based) of the network: a hidden layer with its +/- buttons, or the output.
    const sizes = ready.layer_sizes;
    const output = k === sizes.length - 1;
    const hidden = k - 1;
    const title = output
      ? "output"
      : "layer " + k + "<br>" + sizes[k] + " neurons "
        + "<button data-layer='" + hidden + "' data-delta='1'>+</button>"
        + "<button data-layer='" + hidden + "' data-delta='-1'>&minus;</button>";
    const [div, head] = column(title);
    for (const button of head.querySelectorAll("button")) {
      button.addEventListener("click", () => changeLayers((l) => {
        const i = Number(button.dataset.layer);
        l[i] = Math.max(1, l[i] + Number(button.dataset.delta));
      }));
    }
    const size = sizes[k] > 12 ? 22 : 36;
    const canvases = [];
    for (let j = 0; j < sizes[k]; j++) {
      const node = document.createElement("div");
      node.className = "node";
      let name = ready.layer_names[hidden] + " #" + j;
      if (output) name = digits ? "class " + j : "P(blue)";
      const canvas = nodeCanvas(size, name);
      node.appendChild(canvas);
      if (output && digits) {
        const label = document.createElement("span");
        label.className = "feature-label digit";
        label.textContent = String(j);
        node.appendChild(label);
      }
      div.appendChild(node);
      canvases.push(canvas);
    }
    return [div, canvases];
  }

  function centre(element, origin) {
    const box = element.getBoundingClientRect();
    return [box.left - origin.left + box.width / 2, box.top - origin.top + box.height / 2];
  }

  function buildLinks() {
    const svg = $("links");
    const net = $("net");
    svg.innerHTML = "";
    svg.setAttribute("width", $("columns").scrollWidth);
    svg.setAttribute("height", $("columns").scrollHeight);
    const origin = net.getBoundingClientRect();
    app.lines = [];
    for (let k = 0; k + 1 < app.nodes.length; k++) {
      const from = app.nodes[k].map((c) => centre(c, origin));
      const to = app.nodes[k + 1].map((c) => centre(c, origin));
      const layer = [];
      for (let i = 0; i < from.length; i++) {
        const row = [];
        for (let j = 0; j < to.length; j++) {
          const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
          line.setAttribute("x1", from[i][0]);
          line.setAttribute("y1", from[i][1]);
          line.setAttribute("x2", to[j][0]);
          line.setAttribute("y2", to[j][1]);
          line.setAttribute("stroke", "#ccc");
          svg.appendChild(line);
          row.push(line);
        }
        layer.push(row);
      }
      app.lines.push(layer);
    }
  }

  function styleLine(line, w) {
    const size = Math.abs(w);
    const c = w < 0 ? ORANGE : BLUE;
    line.setAttribute("stroke", "rgb(" + c.join(",") + ")");
    line.setAttribute("stroke-width", Math.min(6, 0.4 + 2 * size).toFixed(2));
    line.setAttribute("stroke-opacity", Math.min(1, 0.15 + size).toFixed(2));
  }

  function updateLinks(state) {
    state.weights.forEach((weights, k) => {
      const lines = app.lines[k];
      if (!lines) return;
      const kernel = weights.kernel;
      if (lines.length === kernel.length) {
        lines.forEach((row, i) => row.forEach((line, j) => styleLine(line, kernel[i][j])));
      } else {
        // The 64 pixels are drawn as one node: a link shows the root-mean-square of the
        // neuron's 64 weights, with the sign of their sum.
        lines[0].forEach((line, j) => {
          let sum = 0, squares = 0;
          for (const row of kernel) { sum += row[j]; squares += row[j] * row[j]; }
          const rms = Math.sqrt(squares / kernel.length);
          styleLine(line, sum < 0 ? -rms : rms);
        });
      }
    });
  }

  // ------------------------------------------------------------------ pictures
  function paint(canvas, width, height, pixel) {
    // Fill a width x height image with pixel(i) -> [r, g, b] and stretch it over the canvas.
    const image = new ImageData(width, height);
    for (let i = 0; i < width * height; i++) {
      const [r, g, b] = pixel(i);
      image.data[4 * i] = r;
      image.data[4 * i + 1] = g;
      image.data[4 * i + 2] = b;
      image.data[4 * i + 3] = 255;
    }
    const small = document.createElement("canvas");
    small.width = width;
    small.height = height;
    small.getContext("2d").putImageData(image, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = width > 10 && height > 10;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  }

  function drawThumbnail(canvas, b64, width, height) {
    const bytes = decode(b64);
    paint(canvas, width, height, (i) => colour((bytes[i] - 127.5) / 127.5));
  }

  function drawMeanDigit(canvas, ready) {
    const bytes = decode(ready.digits.images);
    const n = bytes.length / 64;
    paint(canvas, 8, 8, (p) => {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += bytes[k * 64 + p];
      const v = 255 - Math.round(sum / n);
      return [v, v, v];
    });
  }

  function drawNeurons(state) {
    const digits = state.boundary === null;
    state.neurons.forEach((layer, k) => {
      const canvases = app.nodes[k + 1] || [];
      layer.forEach((neuron, j) => {
        if (!canvases[j]) return;
        if (digits) drawThumbnail(canvases[j], neuron.b64, 10, 1);
        else drawThumbnail(canvases[j], neuron.b64, state.grid / 2, state.grid / 2);
        const name = canvases[j].title.split(" (")[0];
        canvases[j].title = name + " (max |output| " + fmt(neuron.scale, 3) + ")";
      });
    });
  }

  function drawBoundary() {
    const canvas = $("boundary");
    const state = app.state;
    const ready = app.ready;
    const ctx = canvas.getContext("2d");
    if (!state || !ready) {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      return;
    }
    if (state.boundary === null) {
      drawDigits(canvas, ready, state);
      return;
    }
    const bytes = decode(state.boundary);
    // A paler heat map than the points, so the points stay readable on it.
    paint(canvas, state.grid, state.grid, (i) => colour((bytes[i] / 255 * 2 - 1) * 0.75));
    const extent = ready.extent;
    const scale = canvas.width / (2 * extent);
    const groups = [["train", "#fff"]];
    if ($("show-test").checked) groups.push(["test", "#000"]);
    for (const [name, stroke] of groups) {
      for (const [x, y, label] of ready.points[name]) {
        ctx.beginPath();
        ctx.arc((x + extent) * scale, (extent - y) * scale, 3.2, 0, 2 * Math.PI);
        ctx.fillStyle = "rgb(" + (label === 1 ? BLUE : ORANGE).join(",") + ")";
        ctx.fill();
        ctx.strokeStyle = stroke;
        ctx.lineWidth = 1;
        ctx.stroke();
      }
    }
  }

  function drawDigits(canvas, ready, state) {
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const bytes = decode(ready.digits.images);
    const perRow = 6;
    const cell = canvas.width / perRow;
    const side = cell * 0.7;
    ready.digits.labels.forEach((label, n) => {
      const x0 = (n % perRow) * cell + (cell - side) / 2;
      const y0 = Math.floor(n / perRow) * (cell + 14) + 4;
      const small = document.createElement("canvas");
      small.width = 8;
      small.height = 8;
      const image = new ImageData(8, 8);
      for (let p = 0; p < 64; p++) {
        const v = 255 - bytes[n * 64 + p];
        image.data.set([v, v, v, 255], 4 * p);
      }
      small.getContext("2d").putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(small, x0, y0, side, side);
      const predicted = state.predictions[n];
      ctx.fillStyle = predicted === label ? "#216e21" : "#c00";
      ctx.font = "12px sans-serif";
      ctx.fillText(predicted === label ? String(predicted) : predicted + " (is " + label + ")",
        x0, y0 + side + 12);
    });
  }

  function plotLines(canvas, series, yFrom, yTo, xMax) {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const pad = 4;
    const w = canvas.width - 2 * pad;
    const h = canvas.height - 2 * pad;
    for (const { xs, ys, colour: stroke } of series) {
      ctx.beginPath();
      let moved = false;
      ys.forEach((y, i) => {
        if (y === null || !Number.isFinite(y)) { moved = false; return; }
        const px = pad + (xMax > 0 ? xs[i] / xMax : 0) * w;
        const py = pad + h - ((y - yFrom) / (yTo - yFrom || 1)) * h;
        if (moved) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        moved = true;
      });
      ctx.strokeStyle = stroke;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  function drawCurve(state) {
    const curve = state.curve;
    const values = curve.train.concat(curve.test).filter((v) => v !== null && Number.isFinite(v));
    const top = values.length ? Math.max(...values) : 1;
    const xMax = curve.epoch.length ? curve.epoch[curve.epoch.length - 1] : 1;
    plotLines($("curve"), [
      { xs: curve.epoch, ys: curve.train, colour: "#999" },
      { xs: curve.epoch, ys: curve.test, colour: "#000" },
    ], 0, top * 1.05, xMax);
  }

  function drawGradients(state) {
    const g = state.gradients;
    const logs = g.history.map((h) => h.map((v) => (v > 0 ? Math.log10(v) : null)));
    const all = [].concat(...logs).filter((v) => v !== null && Number.isFinite(v));
    const low = all.length ? Math.min(...all) : -1;
    const high = all.length ? Math.max(...all) : 1;
    const xs = (logs[0] || []).map((_, i) => i);
    plotLines($("grads"), logs.map((ys, k) => ({ xs, ys, colour: PALETTE[k % PALETTE.length] })),
      low - 0.1, high + 0.1, Math.max(1, xs.length - 1));
    const verdict = $("verdict");
    verdict.textContent = g.verdict;
    verdict.className = "verdict " + g.verdict.split(" ")[0];
    const list = $("health");
    list.innerHTML = "";
    const norms = document.createElement("li");
    norms.textContent = "gradient norm per layer (log scale above): " + app.ready.layer_names
      .map((name, k) => name + " " + (g.norms[k] === null ? "NaN" : g.norms[k].toPrecision(3)))
      .join(", ");
    norms.style.color = "#666";
    list.appendChild(norms);
    for (const words of g.words) {
      const item = document.createElement("li");
      item.textContent = words;
      list.appendChild(item);
    }
  }

  // ------------------------------------------------------------------ start
  async function start() {
    try {
      app.options = await fetchJSON("/api/options");
    } catch (err) {
      showError("Cannot reach the playground server: " + err.message);
      return;
    }
    fillSelect("dataset", app.options.datasets);
    fillSelect("activation", app.options.activations);
    fillSelect("optimizer", app.options.optimizers);
    fillSelect("regularization", app.options.regularizations);
    let config = app.options.defaults;
    if (location.search.length > 1) {
      const reply = await fetch("/api/config" + location.search);
      const body = await reply.json();
      if (reply.ok) config = body.config;
      else {
        showError("This link's configuration is not valid: " + body.error
          + ". Using the defaults.");
        app.keepError = true;
      }
    }
    fillForm(config);
    bindControls();
    connect();
  }

  // For tests and the curious: the state of the page, and a way to send a raw message.
  window.emberPlayground = { app, sendRaw };
  start();
})();
