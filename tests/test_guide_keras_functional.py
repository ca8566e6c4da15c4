"""Keras guide "The Functional API", re-told on Ember with only the import line changed.

``import ember as keras`` and ``from ember import layers`` replace the Keras imports. MNIST and
CIFAR-10 downloads are replaced by the bundled 8x8 digits and small random arrays, so the sizes
differ from the guide where data goes in (64 features instead of 784) while the architectures
the guide summarizes keep the guide's shapes and parameter counts. The multi-input, multi-output
ticket model (``Embedding`` and ``LSTM`` over a title and a body, plus tags) trains on the
guide's kind of dummy data, 256 tickets instead of 1,280; the shared ``Embedding`` is checked to
be one set of weights serving two inputs.

Left out: ``keras.utils.plot_model`` (it draws with pydot/graphviz) and the VGG19 feature
extractor (a pretrained application; the same ``layer.output`` mechanism is tested on a model
of our own).
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as keras
from ember import layers, ops
from ember.datasets import digits


@pytest.fixture(autouse=True)
def _seed():
    keras.manual_seed(0)


def _summary_text(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _digits_flat():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    x_train = x_train.reshape(len(x_train), 64).astype("float32") / 16
    x_test = x_test.reshape(len(x_test), 64).astype("float32") / 16
    return (x_train, y_train), (x_test, y_test)


def _mlp(features: int, name: str = "mnist_model"):
    inputs = keras.Input(shape=(features,))
    dense = layers.Dense(64, activation="relu")
    hidden = dense(inputs)
    hidden = layers.Dense(64, activation="relu")(hidden)
    outputs = layers.Dense(10)(hidden)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def test_input_shape_and_dtype():
    flat = keras.Input(shape=(784,))
    assert flat.shape == (None, 784)
    assert flat.dtype == "float32"

    images = keras.Input(shape=(32, 32, 3))
    assert images.shape == (None, 32, 32, 3)


def test_mnist_model_summary_counts():
    model = _mlp(784)
    text = _summary_text(model)

    assert text.startswith('Model: "mnist_model"')
    # 784*64+64, 64*64+64, 64*10+10, as in the guide's summary
    for count in ("50,240", "4,160", "650", "Total params: 55,050"):
        assert count in text
    assert model.count_params() == 55050
    assert len(model.layers) == 4  # the InputLayer, then the three Dense layers


def test_train_evaluate_predict_on_digits():
    (x_train, y_train), (x_test, y_test) = _digits_flat()
    model = _mlp(64)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.2, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.history["loss"][1] < history.history["loss"][0]

    test_scores = model.evaluate(x_test, y_test, verbose=0)
    test_loss, test_accuracy = test_scores
    assert test_accuracy > 0.65  # two short epochs on 1,149 digits (0.82 with seed 0)

    model.fit(x_train, y_train, batch_size=64, epochs=10, validation_split=0.2, verbose=0)
    test_loss_later, test_accuracy_later = model.evaluate(x_test, y_test, verbose=0)
    assert test_loss_later < test_loss
    assert test_accuracy_later > 0.9  # the guide's ~0.96 on MNIST, reached on digits

    logits = model.predict(x_test[:5], verbose=0)
    assert logits.shape == (5, 10)


def test_save_and_load_gives_the_same_model(tmp_path):
    (x_train, y_train), (x_test, _) = _digits_flat()
    model = _mlp(64)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=64, epochs=1, verbose=0)
    expected = model.predict(x_test, verbose=0)

    path = tmp_path / "my_model.keras"
    model.save(path)
    del model
    # Recreate the exact same model purely from the file:
    model = keras.models.load_model(path)

    assert model.name == "mnist_model"
    np.testing.assert_array_equal(model.predict(x_test, verbose=0), expected)


def test_functional_config_round_trip():
    model = _mlp(64)
    config = model.get_config()
    new_model = keras.Model.from_config(config)

    assert new_model.name == "mnist_model"
    assert [type(layer) for layer in new_model.layers] == [type(layer) for layer in model.layers]
    assert new_model.count_params() == model.count_params()
    new_model.set_weights(model.get_weights())
    batch = keras.random.uniform((4, 64))
    np.testing.assert_array_equal(new_model(batch).numpy(), model(batch).numpy())


def _encoder_graph():
    encoder_input = keras.Input(shape=(28, 28, 1), name="img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    return encoder_input, encoder_output


def _decoder_layers(code):
    x = layers.Reshape((4, 4, 1))(code)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    return layers.Conv2DTranspose(1, 3, activation="relu")(x)


def test_one_graph_of_layers_defines_two_models():
    encoder_input, encoder_output = _encoder_graph()
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    decoder_output = _decoder_layers(encoder_output)
    autoencoder = keras.Model(encoder_input, decoder_output, name="autoencoder")

    assert encoder.output.shape == (None, 16)
    assert autoencoder.output.shape == (None, 28, 28, 1)
    assert encoder.count_params() == 160 + 4640 + 9248 + 4624  # 18,672
    assert autoencoder.count_params() == 18672 + 160 + 4640 + 4624 + 145  # 28,241
    encoder_text = _summary_text(encoder)
    assert "(None, 8, 8, 32)" in encoder_text and "Total params: 18,672" in encoder_text
    autoencoder_text = _summary_text(autoencoder)
    assert "(None, 24, 24, 32)" in autoencoder_text
    assert "Total params: 28,241" in autoencoder_text

    images = keras.random.uniform((2, 28, 28, 1))
    # The two models share their layers: the autoencoder's code is the encoder's output.
    code = encoder(images)
    assert code.shape == (2, 16)
    assert autoencoder(images).shape == (2, 28, 28, 1)


def test_models_are_callable_like_layers():
    encoder_input, encoder_output = _encoder_graph()
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")

    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    decoder = keras.Model(decoder_input, _decoder_layers(decoder_input), name="decoder")

    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    encoded_img = encoder(autoencoder_input)
    decoded_img = decoder(encoded_img)
    autoencoder = keras.Model(autoencoder_input, decoded_img, name="autoencoder")

    assert [layer.name for layer in autoencoder.layers] == ["img", "encoder", "decoder"]
    assert autoencoder.count_params() == 28241
    images = keras.random.uniform((2, 28, 28, 1))
    np.testing.assert_allclose(
        autoencoder(images).numpy(), decoder(encoder(images)).numpy(), rtol=1e-6, atol=1e-7
    )


def test_ensembling_averages_the_predictions():
    def get_model():
        inputs = keras.Input(shape=(128,))
        outputs = layers.Dense(1)(inputs)
        return keras.Model(inputs, outputs)

    model1, model2, model3 = get_model(), get_model(), get_model()
    inputs = keras.Input(shape=(128,))
    y1, y2, y3 = model1(inputs), model2(inputs), model3(inputs)
    outputs = layers.average([y1, y2, y3])
    ensemble_model = keras.Model(inputs=inputs, outputs=outputs)

    batch = keras.random.normal((4, 128))
    expected = (model1(batch).numpy() + model2(batch).numpy() + model3(batch).numpy()) / 3
    np.testing.assert_allclose(ensemble_model(batch).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert ensemble_model.count_params() == 3 * 129


def _toy_resnet():
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)

    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])

    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])

    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")


def test_toy_resnet_summary_and_one_epoch():
    model = _toy_resnet()
    text = _summary_text(model)
    assert "Total params: 223,242" in text
    assert "(None, 9, 9, 64)" in text  # after the max pooling, also each block's output
    assert "Connected to" in text  # a graph, not a chain

    rng = np.random.default_rng(0)
    x_train = rng.random((40, 32, 32, 3)).astype("float32")
    y_train = keras.utils.to_categorical(rng.integers(0, 10, 40), 10)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    history = model.fit(x_train, y_train, batch_size=16, epochs=1, validation_split=0.2, verbose=0)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    assert np.isfinite(history.history["loss"][0])


def test_every_layer_output_as_a_feature_model():
    model = _mlp(64)
    features_list = [layer.output for layer in model.layers]
    feat_extraction_model = keras.Model(inputs=model.input, outputs=features_list)

    batch = keras.random.uniform((3, 64))
    extracted = feat_extraction_model(batch)
    assert [tuple(f.shape) for f in extracted] == [(3, 64), (3, 64), (3, 64), (3, 10)]
    np.testing.assert_array_equal(extracted[0].numpy(), batch.numpy())
    np.testing.assert_allclose(extracted[-1].numpy(), model(batch).numpy(), rtol=1e-6)


NUM_TAGS = 12  # Number of unique issue tags
NUM_WORDS = 10000  # Size of vocabulary obtained when preprocessing text data
NUM_DEPARTMENTS = 4  # Number of departments for predictions


def _ticket_model():
    title_input = keras.Input(shape=(None,), name="title")  # Variable-length sequence of ints
    body_input = keras.Input(shape=(None,), name="body")  # Variable-length sequence of ints
    tags_input = keras.Input(shape=(NUM_TAGS,), name="tags")  # Binary vectors of size NUM_TAGS

    # Embed each word in the title and in the text into a 64-dimensional vector
    title_features = layers.Embedding(NUM_WORDS, 64)(title_input)
    body_features = layers.Embedding(NUM_WORDS, 64)(body_input)

    # Reduce the embedded title to one 128-dimensional vector, the body to a 32-dimensional one
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)

    # Merge all available features into a single large vector via concatenation
    x = layers.concatenate([title_features, body_features, tags_input])

    # Stick a logistic regression for priority prediction on top of the features
    priority_pred = layers.Dense(1, name="priority")(x)
    # Stick a department classifier on top of the features
    department_pred = layers.Dense(NUM_DEPARTMENTS, name="department")(x)

    # Instantiate an end-to-end model predicting both priority and department
    return keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs=[priority_pred, department_pred],
    )


def _ticket_data(count: int):
    rng = np.random.default_rng(0)
    title_data = rng.integers(NUM_WORDS, size=(count, 10))
    body_data = rng.integers(NUM_WORDS, size=(count, 100))
    tags_data = rng.integers(2, size=(count, NUM_TAGS)).astype("float32")
    priority_targets = rng.random(size=(count, 1))
    dept_targets = rng.integers(2, size=(count, NUM_DEPARTMENTS))
    inputs = {"title": title_data, "body": body_data, "tags": tags_data}
    return inputs, {"priority": priority_targets, "department": dept_targets}


def test_multi_input_multi_output_ticket_model():
    model = _ticket_model()
    text = _summary_text(model)
    # 10000*64 twice; 4*(128*(64+128)+128); 4*(32*(64+32)+32); 172+1; 172*4+4
    for count in ("640,000", "98,816", "12,416", "(None, 172)", "173", "692"):
        assert count in text
    assert "Total params: 1,392,097" in text
    assert model.count_params() == 1392097
    assert model.output_names == ["priority", "department"]

    # A loss and a loss weight per output, as a list...
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=[
            keras.losses.BinaryCrossentropy(from_logits=True),
            keras.losses.CategoricalCrossentropy(from_logits=True),
        ],
        loss_weights=[1.0, 0.2],
    )
    inputs, targets = _ticket_data(256)
    ordered_inputs = [inputs["title"], inputs["body"], inputs["tags"]]
    ordered_targets = [targets["priority"], targets["department"]]
    history = model.fit(ordered_inputs, ordered_targets, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    # ...or by output name; the data by input and output name
    model = _ticket_model()
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    history = model.fit(inputs, targets, epochs=2, batch_size=32, verbose=0).history
    assert sorted(history) == ["department_loss", "loss", "priority_loss"]
    # the total is the weighted sum of the two losses
    weighted = np.add(history["priority_loss"], np.multiply(0.2, history["department_loss"]))
    np.testing.assert_allclose(history["loss"], weighted, rtol=1e-5)
    assert history["loss"][1] < history["loss"][0]

    priority, department = model.predict(inputs, verbose=0)
    assert priority.shape == (256, 1) and department.shape == (256, NUM_DEPARTMENTS)


def test_one_embedding_shared_by_two_text_inputs():
    # Embedding for 1000 unique words mapped to 128-dimensional vectors
    shared_embedding = layers.Embedding(1000, 128)

    # Variable-length sequences of integers
    text_input_a = keras.Input(shape=(None,), dtype="int32")
    text_input_b = keras.Input(shape=(None,), dtype="int32")

    # Reuse the same layer to encode both inputs
    encoded_input_a = shared_embedding(text_input_a)
    encoded_input_b = shared_embedding(text_input_b)
    assert encoded_input_a.shape == encoded_input_b.shape == (None, None, 128)

    model = keras.Model([text_input_a, text_input_b], [encoded_input_a, encoded_input_b])
    assert model.count_params() == 128000  # one table, not two
    assert len(model.weights) == 1
    encoded_a, encoded_b = model([np.array([[5, 17, 42]]), np.array([[42, 5]])])
    np.testing.assert_array_equal(encoded_a.numpy()[0, 2], encoded_b.numpy()[0, 0])
    np.testing.assert_array_equal(encoded_a.numpy()[0, 0], encoded_b.numpy()[0, 1])

    # Training through either input updates the one table.
    pooled_a = layers.GlobalAveragePooling1D()(encoded_input_a)
    pooled_b = layers.GlobalAveragePooling1D()(encoded_input_b)
    head = layers.Dense(1)(layers.concatenate([pooled_a, pooled_b]))
    trained = keras.Model([text_input_a, text_input_b], head)
    trained.compile(optimizer="sgd", loss="mse")
    before = shared_embedding.embeddings.numpy().copy()
    only_b = np.array([[7, 8]])
    trained.fit([np.zeros((1, 2), "int32"), only_b], np.ones((1, 1)), epochs=1, verbose=0)
    changed = np.flatnonzero(np.any(shared_embedding.embeddings.numpy() != before, axis=1))
    np.testing.assert_array_equal(changed, [0, 7, 8])


class CustomDense(layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="random_normal",
            trainable=True,
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {"units": self.units}


def test_custom_layer_in_a_functional_model():
    inputs = keras.Input((4,))
    outputs = CustomDense(10)(inputs)
    model = keras.Model(inputs, outputs)

    batch = keras.random.normal((2, 4))
    layer = model.layers[-1]
    expected = batch.numpy() @ layer.w.numpy() + layer.b.numpy()
    np.testing.assert_allclose(model(batch).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert model.count_params() == 4 * 10 + 10


def test_custom_layer_config_round_trip_with_custom_objects():
    inputs = keras.Input((4,))
    outputs = CustomDense(10)(inputs)
    model = keras.Model(inputs, outputs)
    config = model.get_config()

    new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
    assert isinstance(new_model.layers[-1], CustomDense)
    assert new_model.layers[-1].units == 10
    assert new_model(keras.ones((2, 4))).shape == (2, 10)


UNITS, TIMESTEPS, INPUT_DIM = 32, 10, 5


def _pooling_classifier():
    inputs = keras.Input((None, UNITS))
    x = layers.GlobalAveragePooling1D()(inputs)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


class CustomRNN(layers.Layer):
    def __init__(self):
        super().__init__()
        self.units = UNITS
        self.projection_1 = layers.Dense(units=UNITS, activation="tanh")
        self.projection_2 = layers.Dense(units=UNITS, activation="tanh")
        # Our previously-defined functional model
        self.classifier = _pooling_classifier()
        self.seen_feature_shapes = []

    def call(self, inputs):
        outputs = []
        # the guide writes ops.zeros (see test_guide_keras_sequential.py)
        state = keras.zeros(shape=(inputs.shape[0], self.units))
        for t in range(inputs.shape[1]):
            x = inputs[:, t, :]
            h = self.projection_1(x)
            y = h + self.projection_2(state)
            state = y
            outputs.append(y)
        features = ops.stack(outputs, axis=1)
        self.seen_feature_shapes.append(tuple(features.shape))
        return self.classifier(features)


def test_functional_model_inside_a_subclassed_layer():
    rnn_model = CustomRNN()
    result = rnn_model(keras.zeros((1, TIMESTEPS, INPUT_DIM)))

    assert rnn_model.seen_feature_shapes == [(1, 10, 32)]
    assert result.shape == (1, 1)
    # two projections (5*32+32 and 32*32+32) and the classifier's Dense(1)
    assert len(rnn_model.weights) == 6
    assert rnn_model.count_params() == 192 + 1056 + 33


def test_input_with_a_fixed_batch_shape():
    inputs = keras.Input(batch_shape=(16, TIMESTEPS, INPUT_DIM))
    assert inputs.shape == (16, TIMESTEPS, INPUT_DIM)


def test_subclassed_layer_inside_a_functional_model():
    batch_size = 16
    inputs = keras.Input(batch_shape=(batch_size, TIMESTEPS, INPUT_DIM))
    x = layers.Conv1D(32, 3)(inputs)
    outputs = CustomRNN()(x)
    model = keras.Model(inputs, outputs)

    result = model(keras.random.normal((batch_size, TIMESTEPS, INPUT_DIM)))
    assert result.shape == (batch_size, 1)
    rnn = model.layers[-1]
    assert rnn.seen_feature_shapes[-1] == (batch_size, TIMESTEPS - 2, UNITS)
