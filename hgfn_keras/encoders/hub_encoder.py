"""A frozen pre-trained encoder loaded with `hub.load` (a TF-Hub handle or a SavedModel folder).

`hub.KerasLayer` does not work inside a Keras 3 model ("A KerasTensor cannot be used as
input to a TensorFlow function"), so `HubEncoder` wraps the object that `hub.load`
returns in a Keras layer of its own (docs/DESIGN.md, "Known snags").
"""

import contextlib
import os

import keras
import tensorflow as tf

_DEFAULT_OUTPUT_KEY = "default"


_TRUSTED = [0]  # how many `trust_handles()` blocks are open


@contextlib.contextmanager
def trust_handles():
    """Lets the encoders rebuilt from a config (a `.keras` file's) fetch the URLs their
    handles name.

    A `HubEncoder` stores its handle, not the module, and loads the module when it is
    built; rebuilt from a `.keras` file, it would fetch whatever URL the file names as
    soon as the file is loaded, before any check. So a URL handle in a config is
    refused (`check_handle_trusted`) unless the file is loaded inside this block
    (`training.predict --trust-handles`); local SavedModel folders load as before.
    Encoders built in code (`HubEncoder("https://...")`) are the caller's own request
    and always load.

    >>> with trust_handles():
    ...     check_handle_trusted("https://tfhub.dev/x", "HubEncoder")
    """
    _TRUSTED[0] += 1
    try:
        yield
    finally:
        _TRUSTED[0] -= 1


def check_handle_trusted(handle, layer):
    """Raises a `ValueError` for a URL `handle` in the config of `layer` (a class name)
    outside `trust_handles()`."""
    if isinstance(handle, str) and "://" in handle and not _TRUSTED[0]:
        raise ValueError(
            f"This model's {layer} would fetch {handle!r} as it is loaded: a saved model "
            "never fetches a URL unasked. If you trust the file, load it inside `with "
            "hgfn_keras.encoders.trust_handles():` (training.predict / training.export: "
            f"--trust-handles). Received: handle={handle!r}")


def load_hub_module(handle):
    """Loads a TF-Hub handle or a local SavedModel folder with `hub.load`.

    Args:
        handle: a TF-Hub / Kaggle URL (`https://...`, downloaded by `hub.load` and cached
            in `TFHUB_CACHE_DIR`) or the path of a SavedModel folder (works offline).

    Returns:
        The object `hub.load` returns (call it, or use its `.signatures`).

    Raises:
        ValueError: if `handle` is not a string, names a path that does not exist or is
            not a SavedModel folder, or `hub.load` fails; the message names the handle.
    """
    if not isinstance(handle, (str, os.PathLike)) or not os.fspath(handle):
        raise ValueError(
            f"`handle` must be a TF-Hub URL or a SavedModel folder. Received: handle={handle!r}"
        )
    handle = os.fspath(handle)
    if "://" not in handle:
        if not os.path.exists(handle):
            raise ValueError(
                "`handle` is neither a URL nor an existing SavedModel folder. "
                f"Received: handle={handle!r}"
            )
        if not os.path.isfile(os.path.join(handle, "saved_model.pb")):
            raise ValueError(
                "`handle` is not a SavedModel folder (it has no `saved_model.pb`). "
                f"Received: handle={handle!r}"
            )
    import tensorflow_hub as hub  # imported here: it is slow and pulls in tf_keras

    try:
        return hub.load(handle)
    except Exception as error:  # hub.load raises many kinds (OSError, ValueError, ...)
        raise ValueError(f"`hub.load` could not load `handle`={handle!r}: {error}") from error


def _signature_function(module, signature, handle):
    """The callable to run: the module itself, or one of its signatures."""
    signatures = dict(getattr(module, "signatures", {}) or {})
    if signature is None:
        if callable(module):
            return module, None
        if _DEFAULT_OUTPUT_KEY in signatures:
            signature = _DEFAULT_OUTPUT_KEY
        elif len(signatures) == 1:
            signature = next(iter(signatures))
        else:
            raise ValueError(
                f"The module at `handle`={handle!r} is not callable and has no single or "
                f"'default' signature; pass `signature`. Its signatures: {sorted(signatures)}"
            )
    if signature not in signatures:
        raise ValueError(
            f"The module at `handle`={handle!r} has no signature {signature!r}. "
            f"Its signatures: {sorted(signatures)}"
        )
    function = signatures[signature]
    input_names = sorted(function.structured_input_signature[1])
    if len(input_names) != 1:
        raise ValueError(
            f"Signature {signature!r} of `handle`={handle!r} takes {len(input_names)} inputs "
            f"{input_names}; `HubEncoder` feeds exactly one."
        )
    return function, input_names[0]


def select_output(outputs, output_key, where):
    """Picks one tensor out of a module's outputs (a tensor or a dict of tensors).

    Args:
        outputs: what the module returned.
        output_key: the dict key to take; None: the only key, else `"default"`.
        where: words naming the module, for error messages.

    Returns:
        One tensor.
    """
    if not isinstance(outputs, dict):
        if output_key is not None:
            raise ValueError(
                f"{where} returns a single tensor, not a dict, so `output_key` must be "
                f"None. Received: output_key={output_key!r}"
            )
        return outputs
    if output_key is None:
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        if _DEFAULT_OUTPUT_KEY in outputs:
            return outputs[_DEFAULT_OUTPUT_KEY]
        raise ValueError(
            f"{where} returns several outputs {sorted(outputs)} and none is 'default'; "
            "pass `output_key`."
        )
    if output_key not in outputs:
        raise ValueError(
            f"{where} has no output {output_key!r}. Its outputs: {sorted(outputs)}"
        )
    return outputs[output_key]


def check_vector_per_item(vectors, where):
    """Raises a ValueError unless `vectors` is `[batch, width]` with a known width."""
    shape = tuple(vectors.shape)
    if len(shape) != 2 or shape[1] is None:
        raise ValueError(
            f"{where} must return one vector per item, [batch, width]. Received: shape={shape}"
        )
    return vectors


@keras.saving.register_keras_serializable(package="hgfn_keras")
class HubEncoder(keras.layers.Layer):
    """A frozen pre-trained encoder from a TF-Hub handle or SavedModel folder.

    Loads `handle` with `hub.load` (see `load_hub_module`) and calls the object it
    returns (or one of its signatures, as for TF1-format modules such as ELMo, whose
    `"default"` signature returns a dict with the mean-pooled sentence vector under
    `"default"`). The output must be one vector per item, `[batch, width]`. The module's
    variables stay frozen: they are not Keras weights, so a `.keras` file stores only the
    handle and reloads the module from it.

    Args:
        handle: a TF-Hub URL or a SavedModel folder.
        module_dtype: the dtype fed to the module (`"string"` for text, `"float32"` for
            images or waveforms).
        signature: the signature to call; None: call the module itself if it is callable,
            else its `"default"` (or only) signature.
        output_key: which output to take when the module returns a dict; None: the only
            one, else `"default"`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, ...]` in the module's input format (e.g. strings `[batch]`).

    Returns:
        `[batch, width]`.

    Raises:
        ValueError: if the handle does not exist or cannot be loaded, or the module's
            output is not one vector per item (at the first call).

    Example (a SavedModel folder made on the spot):

    >>> import tempfile, tensorflow as tf
    >>> class Mean(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    ...     def __call__(self, x):
    ...         return tf.concat([x, tf.reduce_mean(x, 1, keepdims=True)], axis=1)
    >>> path = tempfile.mkdtemp()
    >>> tf.saved_model.save(Mean(), path)
    >>> HubEncoder(path, module_dtype="float32")(tf.ones([2, 3])).shape
    TensorShape([2, 4])
    """

    def __init__(self, handle: str, module_dtype: str = "string",
                 signature: "str | None" = None, output_key: "str | None" = None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        try:
            self._module_dtype = tf.as_dtype(module_dtype)
        except TypeError as error:
            raise ValueError(
                f"`module_dtype` must be a dtype name such as 'string' or 'float32'. "
                f"Received: module_dtype={module_dtype!r}"
            ) from error
        for arg, value in (("signature", signature), ("output_key", output_key)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"`{arg}` must be a string or None. Received: {arg}={value!r}")
        self.handle = os.fspath(handle) if isinstance(handle, os.PathLike) else handle
        self.module_dtype = self._module_dtype.name
        self.signature = signature
        self.output_key = output_key
        self.module = load_hub_module(self.handle)
        self._function, self._input_name = _signature_function(
            self.module, signature, self.handle
        )

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        if inputs.dtype != self._module_dtype:
            inputs = tf.cast(inputs, self._module_dtype)
        if self._input_name is None:
            outputs = self._function(inputs)
        else:
            outputs = self._function(**{self._input_name: inputs})
        where = f"The encoder at `handle`={self.handle!r}"
        vectors = select_output(outputs, self.output_key, where)
        return check_vector_per_item(tf.cast(vectors, self.compute_dtype), where)

    @classmethod
    def from_config(cls, config):
        check_handle_trusted(config.get("handle"), cls.__name__)  # before any fetch
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "module_dtype": self.module_dtype,
                "signature": self.signature,
                "output_key": self.output_key,
            }
        )
        return config
