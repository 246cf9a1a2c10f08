"""Model files: save and load a fitted mixture without pickle.

A model file is a zip archive holding one ``.npy`` member per fitted array and
a ``metadata.json`` member (format name, schema version, covariance type,
feature names, gaussmix version, dtype, the estimator's settings and optional
extras such as a selection table). Arrays are read with
``numpy.load(allow_pickle=False)``, so loading a file never executes code.
Files are written to a temporary file in the target directory and renamed
over the target, so a failure never leaves a half-written or clobbered file.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator, Optional, Union

import numpy as np

from .backends import to_numpy
from .covariance import get_covariance_model
from .estimator import GaussianMixture

FORMAT_NAME = "gaussmix-model"
SCHEMA_VERSION = 1
METADATA_MEMBER = "metadata.json"
#: fitted arrays stored in every file, by estimator attribute
ARRAY_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
#: constructor settings worth restoring (the init arrays and callback are not)
SAVED_PARAMS = ("n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init",
                "init_params", "random_state", "warm_start", "verbose", "verbose_interval", "chunk_size")

PathLike = Union[str, "os.PathLike[str]"]


class ModelFileError(ValueError):
    """A file is not a readable gaussmix model: the message names the file and the problem."""

    def __init__(self, path: PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def save(model: GaussianMixture, path: PathLike, *, extra: Optional[dict] = None) -> None:
    """Write a fitted model to ``path`` atomically.

    Parameters
    ----------
    model : GaussianMixture
        A fitted estimator.
    path : str or path-like
        Target file (``.gmm`` is the conventional suffix); replaced if it exists.
    extra : dict, optional
        JSON-serialisable data stored beside the model (the CLI stores the
        selection table here); read it back with :func:`load_metadata`.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, list(ARRAY_ATTRIBUTES))
    # to_numpy: a model fitted on a GPU is saved from host copies (and loads as NumPy)
    arrays = {name.rstrip("_"): to_numpy(getattr(model, name)) for name in ARRAY_ATTRIBUTES}
    # Store each array with its axes ordered by memory stride and restore that
    # layout on load: matrix products round differently on a transposed layout
    # (precisions_cholesky_ is a stack of transposes), and predictions must be bit-identical.
    axes = {name: _memory_axes(array) for name, array in arrays.items()}
    feature_names = getattr(model, "feature_names_in_", None)
    metadata = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "gaussmix_version": _gaussmix_version(),
        "covariance_type": model.covariance_type,
        "n_components": int(model.means_.shape[0]),
        "n_features": int(model.means_.shape[1]),
        "dtype": str(arrays["means"].dtype),
        "feature_names": None if feature_names is None else [str(n) for n in feature_names],
        "params": {name: _json_value(getattr(model, name)) for name in SAVED_PARAMS},
        "fit": {
            "converged": bool(model.converged_),
            "n_iter": int(model.n_iter_),
            # -inf when no EM iteration ran (max_iter=0); JSON has no infinities.
            "lower_bound": float(model.lower_bound_) if np.isfinite(model.lower_bound_) else None,
            "lower_bounds": [float(v) for v in model.lower_bounds_],
            "lower_bounds_per_init": [
                [float(v) for v in trace] for trace in getattr(model, "lower_bounds_per_init_", [model.lower_bounds_])
            ],
        },
        "arrays": {
            name: {"shape": list(a.shape), "dtype": str(a.dtype), "memory_axes": axes[name]}
            for name, a in arrays.items()
        },
        "extra": extra or {},
    }
    # allow_nan=False: a NaN/inf would make the file unreadable by strict JSON parsers.
    text = json.dumps(metadata, indent=2, allow_nan=False)
    with atomic_write(path, "wb") as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_MEMBER, text)
            for name, array in arrays.items():
                buffer = io.BytesIO()
                stored = np.ascontiguousarray(np.transpose(array, axes[name]))
                np.lib.format.write_array(buffer, stored, allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())


def load(path: PathLike) -> GaussianMixture:
    """Read a model written by :func:`save`; predictions equal the saved model's bit for bit.

    Raises
    ------
    ModelFileError
        If the file is missing, truncated, corrupted, not a gaussmix model, or
        written with a newer schema version.
    """
    metadata, arrays = _read(path)
    settings = {name: metadata["params"][name] for name in SAVED_PARAMS if name in metadata["params"]}
    settings.update(n_components=metadata["n_components"], covariance_type=metadata["covariance_type"])
    model = GaussianMixture(**settings)
    for attribute in ARRAY_ATTRIBUTES:
        setattr(model, attribute, arrays[attribute.rstrip("_")])
    fit = metadata["fit"]
    model.converged_ = fit["converged"]
    model.n_iter_ = fit["n_iter"]
    model.lower_bound_ = -math.inf if fit["lower_bound"] is None else fit["lower_bound"]
    model.lower_bounds_ = list(fit["lower_bounds"])
    model.lower_bounds_per_init_ = [list(trace) for trace in fit["lower_bounds_per_init"]]
    model.n_features_in_ = metadata["n_features"]
    if metadata["feature_names"] is not None:
        model.feature_names_in_ = np.asarray(metadata["feature_names"], dtype=object)
    return model


def load_metadata(path: PathLike) -> dict:
    """The metadata of a model file (validated like :func:`load`), including ``extra``."""
    return _read(path)[0]


def is_model_file(path: PathLike) -> bool:
    """Whether ``path`` looks like a gaussmix model file (a zip holding metadata.json)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return METADATA_MEMBER in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {target}: directory {directory} does not exist")
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(descriptor, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# ---------------------------------------------------------------- reading
def _read(path: PathLike) -> tuple[dict, dict]:
    if not os.path.exists(path):
        raise ModelFileError(path, "no such file")
    if os.path.isdir(path):
        raise ModelFileError(path, "is a directory, not a model file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if METADATA_MEMBER not in names:
                raise ModelFileError(path, "not a gaussmix model file (no metadata.json in the archive)")
            metadata = _parse_metadata(path, archive.read(METADATA_MEMBER))
            arrays = {}
            for name in metadata["arrays"]:
                member = f"{name}.npy"
                if member not in names:
                    raise ModelFileError(path, f"corrupt model file: array {name!r} is missing")
                stored = _parse_array(path, name, archive.read(member))
                arrays[name] = _restore_layout(path, name, stored, metadata["arrays"][name])
    except zipfile.BadZipFile as error:
        raise ModelFileError(
            path, f"not a gaussmix model file, or truncated/corrupted ({error})"
        ) from None
    except (OSError, EOFError, zlib.error, zipfile.LargeZipFile) as error:
        raise ModelFileError(path, f"cannot read the model file ({error})") from None
    _check_arrays(path, metadata, arrays)
    return metadata, arrays


def _parse_metadata(path: PathLike, raw: bytes) -> dict:
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(path, f"corrupt model file: metadata.json is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(path, "not a gaussmix model file (its metadata names another format)")
    version = metadata.get("schema_version")
    if not isinstance(version, int):
        raise ModelFileError(path, "corrupt model file: schema_version is missing")
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            path,
            f"written with model-file schema version {version} (gaussmix "
            f"{metadata.get('gaussmix_version', '?')}); this gaussmix reads up to version "
            f"{SCHEMA_VERSION}: upgrade gaussmix",
        )
    required = ("covariance_type", "n_components", "n_features", "feature_names", "params", "fit", "arrays")
    missing = [key for key in required if key not in metadata]
    if missing or not isinstance(metadata["params"], dict) or not isinstance(metadata["fit"], dict) \
            or set(metadata["arrays"]) != {a.rstrip("_") for a in ARRAY_ATTRIBUTES}:
        raise ModelFileError(path, f"corrupt model file: metadata lacks {missing or 'the array list'}")
    try:
        get_covariance_model(metadata["covariance_type"])
    except ValueError:
        raise ModelFileError(
            path,
            f"unknown covariance type {metadata['covariance_type']!r}: the file was written by a "
            "gaussmix with more covariance structures; upgrade gaussmix",
        ) from None
    return metadata


def _parse_array(path: PathLike, name: str, raw: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ModelFileError(path, f"corrupt model file: array {name!r} cannot be read ({error})") from None


def _memory_axes(array: np.ndarray) -> list[int]:
    """Axes from the largest stride to the smallest (C order for a C-contiguous array)."""
    return [int(axis) for axis in np.argsort([-abs(s) for s in array.strides], kind="stable")]


def _restore_layout(path: PathLike, name: str, stored: np.ndarray, entry: Any) -> np.ndarray:
    axes = entry.get("memory_axes") if isinstance(entry, dict) else None
    if axes is None:
        return stored
    if sorted(axes) != list(range(stored.ndim)):
        raise ModelFileError(path, f"corrupt model file: bad memory_axes {axes} for array {name!r}")
    return np.transpose(stored, np.argsort(axes))


def _check_arrays(path: PathLike, metadata: dict, arrays: dict) -> None:
    covariance = get_covariance_model(metadata["covariance_type"])
    K, D = metadata["n_components"], metadata["n_features"]
    expected = {
        "weights": (K,),
        "means": (K, D),
        "covariances": covariance.parameter_shape(K, D),
        "precisions": covariance.parameter_shape(K, D),
        "precisions_cholesky": covariance.parameter_shape(K, D),
    }
    for name, shape in expected.items():
        array = arrays[name]
        if array.dtype.kind != "f":
            raise ModelFileError(path, f"corrupt model file: array {name!r} has dtype {array.dtype}, not float")
        if tuple(array.shape) != tuple(shape):
            raise ModelFileError(
                path, f"corrupt model file: array {name!r} has shape {array.shape}, expected {tuple(shape)}"
            )
        if not np.isfinite(array).all():
            raise ModelFileError(path, f"corrupt model file: array {name!r} holds NaN or inf")
    names = metadata["feature_names"]
    if names is not None and len(names) != D:
        raise ModelFileError(path, f"corrupt model file: {len(names)} feature names for {D} features")


def _json_value(value: Any) -> Any:
    """Settings as JSON: numpy scalars become Python numbers; a RandomState is not kept."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return None


def _gaussmix_version() -> str:
    from . import __version__

    return __version__
