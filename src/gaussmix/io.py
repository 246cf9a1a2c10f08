"""Model files: save and load a fitted mixture without pickle.

A model file is a zip archive holding one ``.npy`` member per fitted array and
a ``metadata.json`` member (format name, schema version, covariance type,
feature names, gaussmix version, dtype, the estimator's settings, a noise
component's weight, volume and box where the model has one, and optional
extras such as a selection table). Arrays are read with
``allow_pickle=False``, so loading a file never executes code.

A file is not trusted: before anything is inflated, its entries' declared
sizes and the arrays' ``.npy`` headers are checked against the metadata (so
a small file cannot claim gigabytes); then the metadata's types and settings,
and the arrays against what every fitted mixture satisfies
(:mod:`gaussmix._model_checks`). :func:`save` runs the same checks, so it
never writes a file :func:`load` refuses.

Files are written to a temporary file in the target directory and renamed
over the target, so a failure never leaves a half-written or clobbered file;
the temporaries of killed writes are removed by the next write to the target.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import io
import json
import math
import os
import socket
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator, Optional, Union

import numpy as np

from ._model_checks import ARRAY_NAMES, FLOAT_DTYPES, InvalidModel, check_fitted_arrays, expected_shapes
from .backends import to_numpy
from .covariance import available_covariance_types, get_covariance_model
from .degeneracy import degenerate_components
from .estimator import GaussianMixture
from .priors import Prior
from .data.npy import read_npy_header

FORMAT_NAME = "gaussmix-model"
#: the newest schema this gaussmix reads. Version 2 adds a noise component (``metadata["noise"]``);
#: models without one are written as version 1, which every gaussmix reads
SCHEMA_VERSION = 2
#: the schema version of a file holding a noise component (older gaussmix refuse it, asking for an upgrade)
NOISE_SCHEMA_VERSION = 2
METADATA_MEMBER = "metadata.json"
#: fitted arrays stored in every file, by estimator attribute
ARRAY_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
#: constructor settings worth restoring (the init arrays and callback are not)
SAVED_PARAMS = ("n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init",
                "init_params", "random_state", "warm_start", "verbose", "verbose_interval", "chunk_size",
                "missing", "equal_weights", "fixed", "prior", "noise", "noise_volume")

PathLike = Union[str, bytes, "os.PathLike[str]"]


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
    path : str, bytes or path-like
        Target file (``.gmm`` is the conventional suffix); replaced if it exists.
    extra : dict, optional
        JSON-serialisable data stored beside the model (the CLI stores the
        selection table here); read it back with :func:`load_metadata`.

    Raises
    ------
    ValueError
        If the model is not one :func:`load` would accept (NaN weights,
        inconsistent arrays, settings out of range); nothing is written then.
    """
    from sklearn.utils.validation import check_is_fitted

    path = _as_path(path)
    check_is_fitted(model, list(ARRAY_ATTRIBUTES))
    # to_numpy: a model fitted on a GPU is saved from host copies (and loads as NumPy)
    arrays = {name.rstrip("_"): to_numpy(getattr(model, name)) for name in ARRAY_ATTRIBUTES}
    metadata = _metadata(model, arrays, extra)
    try:
        _check_metadata(metadata)
        _check_arrays(metadata, arrays)
    except InvalidModel as problem:
        raise ValueError(f"cannot save {path}: the model is not a valid fitted mixture: {problem}") from None
    # allow_nan=False: a NaN/inf would make the file unreadable by strict JSON parsers.
    text = json.dumps(metadata, indent=2, allow_nan=False)
    with atomic_write(path, "wb") as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_MEMBER, text)
            for name, array in arrays.items():
                buffer = io.BytesIO()
                axes = metadata["arrays"][name]["memory_axes"]
                stored = np.ascontiguousarray(np.transpose(array, axes))
                np.lib.format.write_array(buffer, stored, allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())


def _metadata(model: GaussianMixture, arrays: dict, extra: Optional[dict]) -> dict:
    """What ``metadata.json`` holds for ``model``, whose fitted arrays (host copies) are ``arrays``."""
    # Store each array with its axes ordered by memory stride and restore that
    # layout on load: matrix products round differently on a transposed layout
    # (precisions_cholesky_ is a stack of transposes), and predictions must be bit-identical.
    feature_names = getattr(model, "feature_names_in_", None)
    metadata = {
        "format": FORMAT_NAME,
        "schema_version": 1,
        "gaussmix_version": _gaussmix_version(),
        "covariance_type": model.covariance_type,
        "n_components": int(arrays["means"].shape[0]),
        "n_features": int(arrays["means"].shape[1]),
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
            # a prior fit's N_k: its degenerate-fit rule reads them (absent from fits without a prior)
            **({"effective_counts": [float(v) for v in to_numpy(model.effective_counts_)]}
               if hasattr(model, "effective_counts_") else {}),
        },
        "arrays": {
            name: {"shape": list(a.shape), "dtype": str(a.dtype), "memory_axes": _memory_axes(a)}
            for name, a in arrays.items()
        },
        "extra": extra or {},
    }
    noise = model._fitted_noise()
    if noise is not None:
        # JSON floats round-trip exactly: the loaded model's noise density is the saved one's
        metadata["schema_version"] = NOISE_SCHEMA_VERSION
        metadata["params"]["noise"] = True  # also when only noise_init (not saved) asked for it
        metadata["noise"] = {
            "weight": float(noise.weight),
            "volume": float(noise.volume),
            "axes": noise.region.axes.tolist(),
            "bounds": [noise.region.lower.tolist(), noise.region.upper.tolist()],
        }
    return metadata


def load(path: PathLike) -> GaussianMixture:
    """Read a model written by :func:`save`; predictions equal the saved model's bit for bit.

    The file is checked before it is trusted: its entries' sizes and array
    headers against the metadata before anything is inflated, the metadata's
    types and settings, and the arrays against what every fitted mixture
    satisfies (weights on the simplex, with a noise component's weight where
    the model has one, triangular precision factors with positive diagonals,
    covariances the inverse of the precisions).

    Raises
    ------
    ModelFileError
        If the file is missing, truncated, corrupted, tampered with, not a
        gaussmix model, or written with a newer schema version.
    TypeError
        If ``path`` is not a str, bytes or path-like object.
    """
    metadata, arrays = _read(path)
    model = GaussianMixture(**_settings(metadata))
    for attribute in ARRAY_ATTRIBUTES:
        setattr(model, attribute, arrays[attribute.rstrip("_")])
    fit = metadata["fit"]
    model.converged_ = fit["converged"]
    model.n_iter_ = fit["n_iter"]
    model.lower_bound_ = -math.inf if fit["lower_bound"] is None else fit["lower_bound"]
    model.lower_bounds_ = list(fit["lower_bounds"])
    model.lower_bounds_per_init_ = [list(trace) for trace in fit["lower_bounds_per_init"]]
    model.n_features_in_ = metadata["n_features"]
    noise = metadata.get("noise")
    if noise is not None:
        model.noise_weight_ = noise["weight"]
        model.noise_volume_ = noise["volume"]
        model.noise_axes_ = np.asarray(noise["axes"], dtype=np.float64)
        model.noise_bounds_ = np.asarray(noise["bounds"], dtype=np.float64)
    if metadata["feature_names"] is not None:
        model.feature_names_in_ = np.asarray(metadata["feature_names"], dtype=object)
    counts = fit.get("effective_counts")
    if counts is not None:
        counts = model.effective_counts_ = np.asarray(counts, dtype=np.float64)
    # Recomputed, not stored: a loaded model is judged by the same rule as a fitted one.
    model.degenerate_components_ = degenerate_components(model._fitted_params(), float(model.reg_covar), counts)
    model.degenerate_ = bool(np.any(model.degenerate_components_))
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


def _as_path(path: Any) -> str:
    """``path`` as a str; bytes are decoded as the file system does.

    Raises
    ------
    TypeError
        For anything but str, bytes and path-like objects (an open file included).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"a model file path must be a str, bytes or os.PathLike; got {type(path).__name__}")
    return os.fsdecode(path)


# ---------------------------------------------------------------- atomic writes
#: a temporary file of a save on another host (or from a process that may be
#: alive) is removed once it is this old: no running save leaves its file
#: untouched that long
STALE_TEMPORARY_SECONDS = 3600.0


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    The temporary is named after ``path``, this host and this process, so the
    next write to ``path`` removes what a killed one left behind (see
    :func:`_remove_stale_temporaries`). Errors of the file system name
    ``path``, not the temporary.
    """
    target = Path(_as_path(path))
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {target}: directory {directory} does not exist")
    _remove_stale_temporaries(target)
    with _naming_target(target):
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(target), suffix=".tmp")
    try:
        with _naming_target(target):
            # mkstemp creates the file private (0600); give it the mode a plain open() would.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
            handle = os.fdopen(descriptor, mode, **open_kwargs)
        with handle:
            yield handle
            with _naming_target(target):
                handle.flush()
                os.fsync(handle.fileno())
        with _naming_target(target):
            os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _temporary_prefix(target: Path) -> str:
    """``.<name>.<host>-<pid>-``: hidden, and telling which process writes it."""
    return f".{target.name}.{_host_name()}-{os.getpid()}-"


@contextlib.contextmanager
def _naming_target(target: Path) -> Iterator[None]:
    """Re-raise an OSError of the block with ``target`` as its file name (the user's
    path; the temporary's name would puzzle), keeping its class and errno."""
    try:
        yield
    except OSError as error:
        if error.errno is None:
            raise
        raise type(error)(error.errno, f"cannot write {target}: {error.strerror}", str(target)) from None


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the temporaries of earlier writes to ``target`` that will never finish.

    A temporary is stale when the process that made it (on this host) is
    gone, or when it is older than :data:`STALE_TEMPORARY_SECONDS`; a
    concurrent write's temporary is left alone.
    """
    directory = target.parent if str(target.parent) else Path(".")
    pattern = f".{glob.escape(target.name)}.*.tmp"
    for temporary in directory.glob(pattern):
        with contextlib.suppress(OSError):
            if temporary.is_file() and _is_stale(temporary, target):
                temporary.unlink()


def _is_stale(temporary: Path, target: Path) -> bool:
    if time.time() - temporary.stat().st_mtime > STALE_TEMPORARY_SECONDS:
        return True
    # .<name>.<host>-<pid>-<random>.tmp (mkstemp's random part has no "-");
    # older gaussmix versions wrote no host and pid: only their age tells
    parts = temporary.name[len(target.name) + 2: -len(".tmp")].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    return parts[0] == _host_name() and not _process_exists(int(parts[1]))


def _host_name() -> str:
    return socket.gethostname().replace(os.sep, "_") or "host"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive under another user, or unknowable here: keep its file
    return True


# ---------------------------------------------------------------- reading
#: largest metadata.json read (a selection table in ``extra`` included)
MAX_METADATA_BYTES = 64 * 2**20
#: DEFLATE inflates one byte to at most this many (RFC 1951: 258 bytes per 2 bits)
MAX_DEFLATE_RATIO = 1032
#: largest .npy header gaussmix reads (numpy writes 64 to a few hundred bytes)
MAX_NPY_HEADER_BYTES = 65536


def _read(path: PathLike) -> tuple[dict, dict]:
    path = _as_path(path)
    if not os.path.exists(path):
        raise ModelFileError(path, "no such file")
    if os.path.isdir(path):
        raise ModelFileError(path, "is a directory, not a model file")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = _entries(archive)
            if METADATA_MEMBER not in entries:
                raise ModelFileError(path, "not a gaussmix model file (no metadata.json in the archive)")
            metadata = _parse_metadata(path, _read_metadata(archive, entries[METADATA_MEMBER]))
            arrays = {name: _read_array(archive, entries, metadata, name) for name in ARRAY_NAMES}
        _check_arrays(metadata, arrays)
    except ModelFileError:
        raise
    except InvalidModel as problem:
        raise ModelFileError(path, f"corrupt model file: {problem}") from None
    except zipfile.BadZipFile as error:
        raise ModelFileError(
            path, f"not a gaussmix model file, or truncated/corrupted ({error})"
        ) from None
    except (OSError, EOFError, zlib.error, zipfile.LargeZipFile, NotImplementedError) as error:
        raise ModelFileError(path, f"cannot read the model file ({error})") from None
    except MemoryError:
        raise ModelFileError(path, "the model file declares arrays too large for this machine's memory") from None
    return metadata, arrays


def _entries(archive: zipfile.ZipFile) -> dict:
    """The archive's entries by name, each checked before anything is inflated.

    Raises
    ------
    InvalidModel
        For a name that appears twice (zipfile would read the last silently),
        an encrypted entry, a compression method other than stored or
        deflated, or a declared size that no deflated data of the entry's
        compressed size can reach.
    """
    infos = archive.infolist()
    counts = collections.Counter(info.filename for info in infos)
    twice = sorted(name for name, count in counts.items() if count > 1)
    if twice:
        raise InvalidModel(
            f"entry {twice[0]!r} appears {counts[twice[0]]} times in the archive (a reader takes "
            "one of them silently): a tampered or wrongly repacked file"
        )
    for info in infos:
        if info.flag_bits & 0x1:
            raise InvalidModel(f"entry {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            method = zipfile.compressor_names.get(info.compress_type, "unknown")
            raise InvalidModel(
                f"entry {info.filename!r} uses compression method {info.compress_type} ({method}); "
                "model files use deflate or none: save the model again with gaussmix"
            )
        limit = info.compress_size
        if info.compress_type == zipfile.ZIP_DEFLATED:
            limit = MAX_DEFLATE_RATIO * info.compress_size + 64
        if info.file_size > limit:
            raise InvalidModel(
                f"entry {info.filename!r} declares {info.file_size} bytes, more than its "
                f"{info.compress_size} stored bytes can hold"
            )
    return {info.filename: info for info in infos}


def _read_metadata(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_METADATA_BYTES:
        raise InvalidModel(f"metadata.json declares {info.file_size} bytes; at most {MAX_METADATA_BYTES} are read")
    return archive.read(info)


def _parse_metadata(path: str, raw: bytes) -> dict:
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(path, f"corrupt model file: metadata.json is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(path, "not a gaussmix model file (its metadata names another format)")
    version = metadata.get("schema_version")
    if not _is_int(version) or version < 1:
        raise ModelFileError(path, f"corrupt model file: schema_version is {version!r}, not a positive integer")
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            path,
            f"written with model-file schema version {version} (gaussmix "
            f"{metadata.get('gaussmix_version', '?')}); this gaussmix reads up to version "
            f"{SCHEMA_VERSION}: upgrade gaussmix",
        )
    covariance_type = metadata.get("covariance_type")
    if isinstance(covariance_type, str) and covariance_type not in _known_covariance_types():
        raise ModelFileError(
            path,
            f"unknown covariance type {covariance_type!r}: the file was written by a "
            "gaussmix with more covariance structures; upgrade gaussmix",
        )
    _check_metadata(metadata)
    return metadata


def _read_array(archive: zipfile.ZipFile, entries: dict, metadata: dict, name: str) -> np.ndarray:
    """One fitted array, its header checked against the metadata before its data is read.

    The header must declare the dtype and (stored) shape the metadata implies,
    and the entry's declared size must be that header plus the data, so no
    entry inflates to more than the model needs.
    """
    info = entries.get(f"{name}.npy")
    if info is None:
        raise InvalidModel(f"array {name!r} is missing")
    dtype = np.dtype(metadata["dtype"])
    axes = _axes(metadata, name)
    shape = _expected_shapes(metadata)[name]
    stored_shape = tuple(shape[axis] for axis in axes)
    with archive.open(info) as stream:
        header_shape, header_dtype, header_bytes = _npy_header(stream, name)
        if header_dtype != dtype:
            raise InvalidModel(f"array {name!r} cannot be read: it holds dtype {header_dtype}, expected {dtype}")
        if header_shape != stored_shape:
            raise InvalidModel(f"array {name!r} has shape {header_shape}, expected {stored_shape}")
        needed = header_bytes + math.prod(stored_shape) * dtype.itemsize
        if info.file_size != needed:
            raise InvalidModel(
                f"entry '{name}.npy' declares {info.file_size} bytes; its header and an array of "
                f"shape {stored_shape} take {needed}"
            )
        stream.seek(0)
        try:
            stored = np.lib.format.read_array(stream, allow_pickle=False)
        except ValueError as error:
            raise InvalidModel(f"array {name!r} cannot be read ({error})") from None
    return np.transpose(stored, np.argsort(axes))


def _npy_header(stream: IO[bytes], name: str) -> tuple[tuple, np.dtype, int]:
    """``(shape, dtype, header length)`` of the .npy data at the start of ``stream``."""
    try:
        header = read_npy_header(stream)
        if header is None:
            raise ValueError("unsupported .npy format version")
        shape, _, dtype = header
    except ValueError as error:
        raise InvalidModel(f"array {name!r} cannot be read ({error})") from None
    header_bytes = stream.tell()
    if header_bytes > MAX_NPY_HEADER_BYTES:
        raise InvalidModel(f"array {name!r} cannot be read: its header takes {header_bytes} bytes")
    return tuple(shape), dtype, header_bytes


# ---------------------------------------------------------------- validation
#: what a fitted model's metadata.json holds besides format and schema_version
REQUIRED_KEYS = ("covariance_type", "n_components", "n_features", "dtype", "feature_names", "params", "fit", "arrays")
#: what its ``fit`` object holds
FIT_KEYS = ("converged", "n_iter", "lower_bound", "lower_bounds", "lower_bounds_per_init")


def _check_metadata(metadata: dict) -> None:
    """Refuse metadata of the wrong structure or types, field by field (what :func:`save` writes).

    Raises
    ------
    InvalidModel
        Naming the field and what it should be.
    """
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise InvalidModel(f"metadata lacks {', '.join(repr(key) for key in missing)}")
    if not isinstance(metadata["covariance_type"], str) or \
            metadata["covariance_type"] not in _known_covariance_types():
        raise InvalidModel(f"covariance_type is {metadata['covariance_type']!r}, not a covariance type's name")
    for key in ("n_components", "n_features"):
        if not _is_int(metadata[key]) or metadata[key] < 1:
            raise InvalidModel(f"{key} is {metadata[key]!r}, not a positive integer")
    if metadata["dtype"] not in [str(dtype) for dtype in FLOAT_DTYPES]:
        raise InvalidModel(f"dtype is {metadata['dtype']!r}, not 'float32' or 'float64'")
    _check_feature_names(metadata["feature_names"], metadata["n_features"])
    _check_settings(metadata)
    _check_fit(metadata["fit"])
    _check_noise(metadata)
    _check_counts(metadata)
    _check_array_entries(metadata)
    if not isinstance(metadata.get("extra", {}), dict):
        raise InvalidModel(f"extra is a {type(metadata['extra']).__name__}, not a JSON object")


def _check_feature_names(names: Any, n_features: int) -> None:
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidModel(f"feature_names is {_short(names)}, not null or a list of strings")
    if len(names) != n_features:
        raise InvalidModel(f"{len(names)} feature names for {n_features} features")


def _settings(metadata: dict) -> dict:
    """Constructor arguments of the saved model. A null setting keeps the default: the
    value was not storable in JSON (an initialiser callable, a RandomState)."""
    params = metadata["params"]
    settings = {name: params[name] for name in SAVED_PARAMS if params.get(name) is not None}
    settings.update(n_components=metadata["n_components"], covariance_type=metadata["covariance_type"])
    if isinstance(settings.get("prior"), dict):
        # a Prior's hyperparameters (to_json); "default" stays a name
        settings["prior"] = Prior.from_json(settings["prior"])
    return settings


def _check_settings(metadata: dict) -> None:
    """The saved settings pass the estimator's own parameter validation."""
    if not isinstance(metadata["params"], dict):
        raise InvalidModel(f"params is a {type(metadata['params']).__name__}, not a JSON object")
    try:
        GaussianMixture(**_settings(metadata))._check_hyperparameters()
    except (ValueError, TypeError) as error:
        raise InvalidModel(f"invalid settings in params: {error}") from None


def _check_fit(fit: Any) -> None:
    """``fit``: converged (bool), n_iter (int >= 0), lower_bound (number or null) and traces."""
    if not isinstance(fit, dict):
        raise InvalidModel(f"fit is a {type(fit).__name__}, not a JSON object")
    missing = [key for key in FIT_KEYS if key not in fit]
    if missing:
        raise InvalidModel(f"metadata lacks {', '.join('fit.' + key for key in missing)}")
    if not isinstance(fit["converged"], bool):
        raise InvalidModel(f"fit.converged is {_short(fit['converged'])}, not true or false")
    if not _is_int(fit["n_iter"]) or fit["n_iter"] < 0:
        raise InvalidModel(f"fit.n_iter is {_short(fit['n_iter'])}, not a non-negative integer")
    if fit["lower_bound"] is not None and not _is_finite_number(fit["lower_bound"]):
        raise InvalidModel(f"fit.lower_bound is {_short(fit['lower_bound'])}, not a finite number or null")
    if not _is_number_list(fit["lower_bounds"]):
        raise InvalidModel(f"fit.lower_bounds is {_short(fit['lower_bounds'])}, not a list of finite numbers")
    traces = fit["lower_bounds_per_init"]
    if not isinstance(traces, list) or not all(_is_number_list(trace) for trace in traces):
        raise InvalidModel(f"fit.lower_bounds_per_init is {_short(traces)}, not a list of lists of finite numbers")


#: what a noise component's entry holds
NOISE_KEYS = ("weight", "volume", "axes", "bounds")
#: how far a saved box's axes may be from orthonormal (a fit's are to rounding)
_AXES_TOLERANCE = 1e-9


def _check_noise(metadata: dict) -> None:
    """``noise`` (where present): weight in [0, 1), a finite positive volume, a (D, D)
    orthonormal ``axes`` and (2, D) ``bounds`` whose lower row is at most the upper."""
    if "noise" not in metadata or metadata["noise"] is None:
        return
    noise, D = metadata["noise"], metadata["n_features"]
    if metadata["schema_version"] < NOISE_SCHEMA_VERSION:
        raise InvalidModel(f"a noise component in a file of schema version {metadata['schema_version']}; "
                           f"files with one are version {NOISE_SCHEMA_VERSION}")
    if not isinstance(noise, dict) or sorted(noise) != sorted(NOISE_KEYS):
        raise InvalidModel(f"noise is {_short(noise)}, not an object with the entries {list(NOISE_KEYS)}")
    if not _is_finite_number(noise["weight"]) or not 0 <= noise["weight"] < 1:
        raise InvalidModel(f"noise.weight is {_short(noise['weight'])}, not a number in [0, 1)")
    if not _is_finite_number(noise["volume"]) or noise["volume"] <= 0:
        raise InvalidModel(f"noise.volume is {_short(noise['volume'])}, not a finite positive number")
    for name, rows in (("axes", D), ("bounds", 2)):
        value = noise[name]
        if not (isinstance(value, list) and len(value) == rows and
                all(_is_number_list(row) and len(row) == D for row in value)):
            raise InvalidModel(f"noise.{name} is {_short(value)}, not {rows} lists of {D} finite numbers")
    axes, bounds = np.asarray(noise["axes"], dtype=np.float64), np.asarray(noise["bounds"], dtype=np.float64)
    if not np.allclose(axes.T @ axes, np.eye(D), rtol=0, atol=_AXES_TOLERANCE):
        raise InvalidModel("noise.axes are not orthonormal: the noise box would not be a box")
    if np.any(bounds[0] > bounds[1]):
        raise InvalidModel("noise.bounds' lower row exceeds its upper row")


def _check_counts(metadata: dict) -> None:
    """``fit.effective_counts``: absent without a prior; with one, K finite numbers >= 0 (files of
    gaussmix before it kept them lack them: their prior fits are judged by the covariance rule alone)."""
    counts = metadata["fit"].get("effective_counts")
    if counts is None:
        return
    if metadata["params"].get("prior") is None:
        raise InvalidModel("fit.effective_counts is given, but the model has no prior (only prior fits keep them)")
    n_components = metadata["n_components"]
    if not _is_number_list(counts) or len(counts) != n_components or min(counts) < 0:
        raise InvalidModel(f"fit.effective_counts is {_short(counts)}, not a list of {n_components} "
                           "finite numbers >= 0")


def _check_array_entries(metadata: dict) -> None:
    """``arrays``: one entry per fitted array, each with its memory layout.

    Their ``shape`` and ``dtype`` only describe the arrays: the .npy headers
    are checked against K, D and ``dtype`` instead.
    """
    entries = metadata["arrays"]
    if not isinstance(entries, dict) or set(entries) != set(ARRAY_NAMES):
        shown = sorted(entries) if isinstance(entries, dict) else _short(entries)
        raise InvalidModel(f"metadata lacks the array list: arrays is {shown}, expected entries {list(ARRAY_NAMES)}")
    for name in ARRAY_NAMES:
        if not isinstance(entries[name], dict):
            raise InvalidModel(f"arrays.{name} is {_short(entries[name])}, not a JSON object")
        _axes(metadata, name)


def _axes(metadata: dict, name: str) -> list[int]:
    """The stored array's axes in the fitted array's order (identity when not given)."""
    ndim = len(_expected_shapes(metadata)[name])
    axes = metadata["arrays"][name].get("memory_axes", list(range(ndim)))
    if not (isinstance(axes, list) and all(map(_is_int, axes)) and sorted(axes) == list(range(ndim))):
        raise InvalidModel(f"bad memory_axes {_short(axes)} for array {name!r}")
    return axes


def _expected_shapes(metadata: dict) -> dict:
    """Shapes of the fitted arrays, by name, for the metadata's covariance type, K and D."""
    covariance = get_covariance_model(metadata["covariance_type"])
    return expected_shapes(covariance, metadata["n_components"], metadata["n_features"])


def _check_arrays(metadata: dict, arrays: dict) -> None:
    """The arrays are those of a fitted mixture of the metadata's type, K and D."""
    covariance = get_covariance_model(metadata["covariance_type"])
    noise = metadata.get("noise")
    check_fitted_arrays(arrays, covariance, metadata["n_components"], metadata["n_features"],
                        0.0 if noise is None else noise["weight"])


def _known_covariance_types() -> set:
    return set(available_covariance_types())


def _is_int(value: Any) -> bool:
    """A JSON integer (``true`` is a bool in Python, and a bool is an int: not here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_number_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_finite_number(v) for v in value)


def _short(value: Any) -> str:
    """``repr(value)``, cut to a readable length for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _memory_axes(array: np.ndarray) -> list[int]:
    """Axes from the largest stride to the smallest (C order for a C-contiguous array)."""
    return [int(axis) for axis in np.argsort([-abs(s) for s in array.strides], kind="stable")]


def _json_value(value: Any) -> Any:
    """Settings as JSON: numpy scalars become Python numbers; a RandomState is not kept."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Prior):
        return value.to_json()
    # fixed={"means", ...} or per-component masks: the BIC of a reloaded model counts on them
    if isinstance(value, (set, frozenset)):
        return sorted(_json_value(item) for item in value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return None


def _gaussmix_version() -> str:
    from . import __version__

    return __version__
