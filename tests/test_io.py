"""Model files: exact round trips, no pickle, atomic writes, clear errors for bad files."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import gaussmix
from gaussmix import GaussianMixture, ModelFileError, load, save
from gaussmix.covariance import canonical_covariance_types
from gaussmix.io import load_metadata

from .conftest import make_blobs


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=150, n_features=3, seed=0)[0]


@pytest.fixture
def saved(tmp_path, data):
    model = GaussianMixture(3, n_init=2, random_state=0).fit(data)
    path = tmp_path / "model.gmm"
    save(model, path)
    return model, path


def _rewrite(path, target, change_metadata=None, members=None):
    """Copy the archive at ``path`` to ``target``, editing metadata or members."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
        for name in source.namelist():
            raw = source.read(name)
            if name == "metadata.json" and change_metadata is not None:
                metadata = json.loads(raw)
                change_metadata(metadata)
                raw = json.dumps(metadata).encode()
            if members and name in members:
                raw = members[name]
                if raw is None:
                    continue
            copy.writestr(name, raw)


@pytest.mark.parametrize("covariance_type", canonical_covariance_types())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact_for_every_registered_structure(tmp_path, data, covariance_type, dtype):
    X = data.astype(dtype)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    path = tmp_path / f"{covariance_type}.gmm"
    save(model, path)
    loaded = load(path)
    for method in ("predict", "predict_proba", "score_samples"):
        assert np.array_equal(getattr(model, method)(X), getattr(loaded, method)(X))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(loaded, name).dtype == getattr(model, name).dtype
        assert np.array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.get_params() == {**model.get_params(), "callback": None}
    assert loaded.lower_bounds_ == model.lower_bounds_
    assert loaded.n_features_in_ == 3
    assert loaded.bic(X) == model.bic(X)


def test_metadata_holds_what_the_issue_asks(saved):
    model, path = saved
    metadata = load_metadata(path)
    assert metadata["format"] == "gaussmix-model" and metadata["schema_version"] == 1
    assert metadata["gaussmix_version"] == gaussmix.__version__
    assert metadata["covariance_type"] == "full" and metadata["dtype"] == "float64"
    assert metadata["feature_names"] is None
    assert len(metadata["fit"]["lower_bounds_per_init"]) == 2


def test_feature_names_and_extra_are_kept(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(data)
    model.feature_names_in_ = np.asarray(["a", "b", "c"], dtype=object)
    save(model, tmp_path / "m.gmm", extra={"selection": {"criterion": "bic"}})
    assert list(load(tmp_path / "m.gmm").feature_names_in_) == ["a", "b", "c"]
    assert load_metadata(tmp_path / "m.gmm")["extra"] == {"selection": {"criterion": "bic"}}


def test_loading_never_unpickles(tmp_path, saved):
    _, path = saved
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    target = tmp_path / "pickled.gmm"
    _rewrite(path, target, members={"weights.npy": buffer.getvalue()})
    with pytest.raises(ModelFileError, match=r"pickled\.gmm: corrupt model file: array 'weights' cannot be read"):
        load(target)


def test_truncated_file(tmp_path, saved):
    _, path = saved
    raw = path.read_bytes()
    target = tmp_path / "truncated.gmm"
    target.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match=r"truncated\.gmm: .*truncated/corrupted"):
        load(target)


def test_corrupted_bytes(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(data)
    path = tmp_path / "m.gmm"
    save(model, path)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"weights.npy") + len("weights.npy")  # compressed bytes of that member follow
    for offset in range(start + 5, start + 25):
        raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"m\.gmm: "):
        load(path)


def test_newer_schema_version(tmp_path, saved):
    _, path = saved
    target = tmp_path / "future.gmm"
    _rewrite(path, target, change_metadata=lambda m: m.update(schema_version=99))
    with pytest.raises(ModelFileError, match="future.gmm: written with model-file schema version 99.*upgrade gaussmix"):
        load(target)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format="something-else"), "not a gaussmix model file"),
    (lambda m: m.update(n_components=4), r"array 'weights' has shape \(3,\), expected \(4,\)"),
    (lambda m: m.update(covariance_type="XYZ"), "unknown covariance type 'XYZ'"),
    (lambda m: m.pop("arrays"), "metadata lacks"),
    (lambda m: m.update(feature_names=["a"]), "1 feature names for 3 features"),
])
def test_inconsistent_metadata(tmp_path, saved, change, message):
    _, path = saved
    target = tmp_path / "edited.gmm"
    _rewrite(path, target, change_metadata=change)
    with pytest.raises(ModelFileError, match=message):
        load(target)


def test_missing_array_and_non_finite_array(tmp_path, saved):
    _, path = saved
    target = tmp_path / "missing.gmm"
    _rewrite(path, target, members={"means.npy": None})
    with pytest.raises(ModelFileError, match="array 'means' is missing"):
        load(target)
    buffer = io.BytesIO()
    np.save(buffer, np.array([np.nan, 0.5, 0.5]))
    _rewrite(path, target, members={"weights.npy": buffer.getvalue()})
    with pytest.raises(ModelFileError, match="'weights' holds NaN or inf"):
        load(target)


def test_files_that_are_not_models(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ModelFileError, match=r"data\.csv: not a gaussmix model file"):
        load(csv)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="no metadata.json"):
        load(other_zip)
    bad_json = tmp_path / "bad.gmm"
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr("metadata.json", "{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(bad_json)
    with pytest.raises(ModelFileError, match="nothere.gmm: no such file"):
        load(tmp_path / "nothere.gmm")
    with pytest.raises(ModelFileError, match="is a directory"):
        load(tmp_path)
    assert issubclass(ModelFileError, ValueError)


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, saved, data, monkeypatch):
    _, path = saved
    before = path.read_bytes()
    other = GaussianMixture(2, covariance_type="diag", random_state=0).fit(data)
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    original = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        save(other, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.gmm"]


def test_save_errors(tmp_path, data):
    with pytest.raises(NotFittedError):
        save(GaussianMixture(2), tmp_path / "m.gmm")
    model = GaussianMixture(2, random_state=0).fit(data)
    with pytest.raises(FileNotFoundError, match="directory .*nodir does not exist"):
        save(model, tmp_path / "nodir" / "m.gmm")


def test_model_without_em_iterations_round_trips(tmp_path, data):
    model = GaussianMixture(2, max_iter=0, random_state=0).fit(data)
    save(model, tmp_path / "start.gmm")
    loaded = load(tmp_path / "start.gmm")
    assert loaded.lower_bound_ == -np.inf
    assert np.array_equal(loaded.predict(data), model.predict(data))


# ---------------------------------------------------------------- tampered files
def _stored_npy(array, axes):
    """``array`` as save stores it: its axes in memory order (see ``memory_axes``)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(np.transpose(array, axes)), allow_pickle=False)
    return buffer.getvalue()


def _tampered(path, target, **changes):
    """Copy the model file at ``path`` to ``target`` with fitted arrays replaced.

    ``changes`` maps an array name to a function of the loaded array (a copy).
    """
    model = load(path)
    axes = {name: entry["memory_axes"] for name, entry in load_metadata(path)["arrays"].items()}
    members = {
        f"{name}.npy": _stored_npy(change(getattr(model, name + "_").copy()), axes[name])
        for name, change in changes.items()
    }
    _rewrite(path, target, members=members)


def _transposed(factors):
    return np.swapaxes(factors, -1, -2) if factors.ndim >= 2 else factors


def _off_triangle(factors):
    factors[..., -1, 0] = factors[..., 0, -1] + 1.0
    return factors


def _set(index, value):
    def change(array):
        array[index] = value
        return array
    return change


#: arrays changed as a tampering or a bug would, and what load must say: they load today
TAMPERED_ARRAYS = [
    (dict(weights=lambda w: np.ones_like(w)), r"'weights' sums to 3\.0, not 1"),
    (dict(weights=lambda w: np.array([1.5, -0.25, -0.25])), "'weights' holds negative values"),
    (dict(means=_set((0, 0), 1e200)), "'means' holds values of magnitude 1e\\+200"),
    (dict(precisions_cholesky=lambda c: -c), "diagonal entry <= 0"),
    (dict(precisions_cholesky=_set((1, 2, 2), 0.0)), "factor 1 has a diagonal entry <= 0"),
    (dict(precisions_cholesky=_transposed), "precision matrix 0 differs from the product of its Cholesky factors"),
    (dict(precisions_cholesky=_off_triangle), "precision Cholesky factor 0 is not triangular"),
    (dict(precisions=lambda p: 2 * p), "precision matrix 0 differs"),
    (dict(covariances=lambda c: 10 * c), r"covariance matrix 0 is not the inverse of its precision matrix"),
    (dict(covariances=_set((2, 0, 1), 0.1)), "covariance matrix 2 is not the inverse"),
    (dict(weights=lambda w: w.astype(np.float32)), "array 'weights' cannot be read: it holds dtype float32, expected float64"),
]


@pytest.mark.parametrize("changes, message", TAMPERED_ARRAYS)
def test_tampered_arrays_are_refused_by_load_and_by_save(tmp_path, saved, changes, message):
    model, path = saved
    target = tmp_path / "tampered.gmm"
    _tampered(path, target, **changes)
    with pytest.raises(ModelFileError, match=r"tampered\.gmm: corrupt model file: .*" + message):
        load(target)
    if "cannot be read" in message:
        return  # a dtype mismatch between arrays: save refuses it with another message
    for name, change in changes.items():
        setattr(model, name + "_", change(getattr(model, name + "_").copy()))
    with pytest.raises(ValueError, match="cannot save .*again.gmm: the model is not a valid fitted mixture: .*" + message):
        save(model, tmp_path / "again.gmm")
    assert not (tmp_path / "again.gmm").exists()


@pytest.mark.parametrize("covariance_type", canonical_covariance_types())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inconsistent_covariances_and_weights_are_refused_for_every_structure(tmp_path, data, covariance_type, dtype):
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(data.astype(dtype))
    path = tmp_path / "m.gmm"
    save(model, path)
    for changes, message in [
        (dict(covariances=lambda c: 10 * c), "is not the inverse of"),
        (dict(weights=lambda w: w * 1.01), "'weights' sums to"),
        (dict(precisions_cholesky=lambda c: -c), "<= 0"),
    ]:
        _tampered(path, tmp_path / "bad.gmm", **changes)
        with pytest.raises(ModelFileError, match=message):
            load(tmp_path / "bad.gmm")


def test_save_refuses_nan_weights_and_bad_settings(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(data)
    model.weights_ = np.array([np.nan, 1.0])
    with pytest.raises(ValueError, match="cannot save .*: array 'weights' holds NaN or inf"):
        save(model, tmp_path / "m.gmm")
    model = GaussianMixture(2, random_state=0).fit(data)
    model.reg_covar = -1
    with pytest.raises(ValueError, match=r"cannot save .*invalid settings in params: The 'reg_covar' parameter"):
        save(model, tmp_path / "m.gmm")
    assert os.listdir(tmp_path) == []


def test_ill_conditioned_and_initialised_models_round_trip(tmp_path):
    """The checks allow for rounding: models a fit gives save and load, exactly."""
    rng = np.random.RandomState(3)
    X = rng.normal(size=(400, 4)) * np.logspace(-3, 3, 4)
    X[:, 1] = 2 * X[:, 0] + 1e-4 * rng.normal(size=400)  # correlation 1 - 1e-8
    X[:200] += 5 * X.std(axis=0)
    precisions = np.linalg.inv(np.cov(X[:200].T) + 1e-6 * np.eye(4))
    for dtype in (np.float64, np.float32):
        for model in (
            GaussianMixture(2, random_state=0, reg_covar=1e-9).fit(X.astype(dtype)),
            GaussianMixture(2, covariance_type="tied", random_state=0).fit(X.astype(dtype)),
            # lower-triangular factors of precisions_init, covariances inverted from them
            GaussianMixture(2, max_iter=0, precisions_init=np.stack([precisions] * 2)).fit(X.astype(dtype)),
        ):
            save(model, tmp_path / "m.gmm")
            loaded = load(tmp_path / "m.gmm")
            assert np.array_equal(loaded.score_samples(X.astype(dtype)), model.score_samples(X.astype(dtype)))


def test_duplicated_entry_is_refused(tmp_path, saved):
    _, path = saved
    target = tmp_path / "twice.gmm"
    _rewrite(path, target)
    with zipfile.ZipFile(target, "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("weights.npy", _stored_npy(np.full(3, 1 / 3), [0]))
    with pytest.raises(ModelFileError, match="twice.gmm: corrupt model file: entry 'weights.npy' appears 2 times"):
        load(target)


#: metadata edits of the wrong type or value: KeyError, AttributeError or silent loads today
BAD_METADATA = [
    (lambda m: m.update(arrays=list(m["arrays"])), "metadata lacks the array list"),
    (lambda m: m["fit"].pop("lower_bounds"), "metadata lacks fit.lower_bounds"),
    (lambda m: m.update(schema_version=True), "schema_version is True, not a positive integer"),
    (lambda m: m.update(schema_version=0), "schema_version is 0"),
    (lambda m: m["params"].update(reg_covar=-1), "invalid settings in params: The 'reg_covar' parameter"),
    (lambda m: m["params"].update(tol="0.1"), "invalid settings in params: The 'tol' parameter"),
    (lambda m: m["params"].update(init_params="nope"), "invalid settings in params: unknown init_params 'nope'"),
    (lambda m: m.update(feature_names="abc"), "feature_names is 'abc', not null or a list of strings"),
    (lambda m: m.update(n_components="3"), "n_components is '3', not a positive integer"),
    (lambda m: m.update(n_features=True), "n_features is True"),
    (lambda m: m.update(covariance_type=["full"]), r"covariance_type is \['full'\]"),
    (lambda m: m.update(dtype="float16"), "dtype is 'float16', not 'float32' or 'float64'"),
    (lambda m: m.update(params=[1]), "params is a list, not a JSON object"),
    (lambda m: m.update(fit="done"), "fit is a str, not a JSON object"),
    (lambda m: m["fit"].update(converged="yes"), "fit.converged is 'yes', not true or false"),
    (lambda m: m["fit"].update(n_iter=-2), "fit.n_iter is -2"),
    (lambda m: m["fit"].update(lower_bound=float("nan")), "fit.lower_bound is nan, not a finite number"),
    (lambda m: m["fit"].update(lower_bounds_per_init=[["a"]]), "fit.lower_bounds_per_init is"),
    (lambda m: m["arrays"].update(weights=[3]), r"arrays.weights is \[3\], not a JSON object"),
    (lambda m: m["arrays"]["means"].update(memory_axes=[0, 0]), r"bad memory_axes \[0, 0\] for array 'means'"),
    (lambda m: m.update(extra=[1]), "extra is a list, not a JSON object"),
]


@pytest.mark.parametrize("change, message", BAD_METADATA)
def test_metadata_of_the_wrong_type_is_named(tmp_path, saved, change, message):
    _, path = saved
    target = tmp_path / "edited.gmm"
    _rewrite(path, target, change_metadata=change)
    for read in (load, load_metadata):
        with pytest.raises(ModelFileError, match=r"edited\.gmm: corrupt model file: " + message) as info:
            read(target)
        assert type(info.value) is ModelFileError


def _patch_compression_method(raw, member, method):
    """``raw`` (a zip) with ``member``'s compression method field set to ``method``."""
    raw = bytearray(raw)
    name = member.encode()
    for signature, field, name_offset in ((b"PK\x03\x04", 8, 30), (b"PK\x01\x02", 10, 46)):
        start = raw.find(signature)
        while start >= 0:
            if raw[start + name_offset: start + name_offset + len(name)] == name:
                raw[start + field: start + field + 2] = method.to_bytes(2, "little")
            start = raw.find(signature, start + 1)
    return bytes(raw)


def test_unsupported_compression_is_named(tmp_path, saved):
    _, path = saved
    target = tmp_path / "bz.gmm"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", compression=zipfile.ZIP_BZIP2) as copy:
        for name in source.namelist():
            copy.writestr(name, source.read(name))
    with pytest.raises(ModelFileError, match=r"entry 'metadata.json' uses compression method 12 \(bzip2\); model files use deflate"):
        load(target)
    unknown = tmp_path / "unknown.gmm"
    unknown.write_bytes(_patch_compression_method(path.read_bytes(), "weights.npy", 99))
    with pytest.raises(ModelFileError, match=r"entry 'weights.npy' uses compression method 99 \(unknown\)"):
        load(unknown)


def test_bytes_paths_load_and_other_paths_are_a_type_error(tmp_path, saved, data):
    model, path = saved
    loaded = load(os.fsencode(path))
    assert np.array_equal(loaded.predict(data), model.predict(data))
    save(model, os.fsencode(tmp_path / "bytes.gmm"))
    assert np.array_equal(load(tmp_path / "bytes.gmm").means_, model.means_)
    for bad in (3, None, io.BytesIO(path.read_bytes())):
        with pytest.raises(TypeError, match="a model file path must be a str, bytes or os.PathLike"):
            load(bad)


def _bomb(shape, data_bytes):
    """A deflated .npy entry declaring ``shape`` (float64) followed by ``data_bytes`` zeros."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("weights.npy", "w", force_zip64=True) as entry:
            entry.write(header.getvalue())
            for _ in range(data_bytes // 2**20):
                entry.write(bytes(2**20))
    return buffer.getvalue()


def test_entries_are_checked_before_they_are_inflated(tmp_path, saved):
    """A small file declaring a huge array is refused without allocating it."""
    import tracemalloc

    _, path = saved
    bomb = tmp_path / "bomb.gmm"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as copy:
        for name in source.namelist():
            if name != "weights.npy":
                copy.writestr(name, source.read(name))
        with zipfile.ZipFile(io.BytesIO(_bomb((2**24,), 2**27))) as inner:  # 128 MiB of zeros
            info = inner.infolist()[0]
            copy.writestr(info, inner.read(info), compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"bomb\.gmm: corrupt model file: array 'weights' has shape \(16777216,\), expected \(3,\)"):
            load(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak} bytes allocated while refusing the file"


def test_a_header_declaring_a_huge_shape_is_not_a_memory_error(tmp_path, saved):
    _, path = saved
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    target = tmp_path / "huge.gmm"
    _rewrite(path, target, members={"weights.npy": header.getvalue()})
    with pytest.raises(ModelFileError, match=r"array 'weights' has shape \(1000000000000,\), expected \(3,\)"):
        load(target)
    # the same with metadata that agrees: the entry is too short for the array it declares
    _rewrite(path, target, change_metadata=lambda m: m.update(n_components=10**12), members={"weights.npy": header.getvalue()})
    with pytest.raises(ModelFileError, match=r"entry 'weights.npy' declares \d+ bytes; its header and an array of shape \(1000000000000,\) take"):
        load(target)


# ---------------------------------------------------------------- temporaries
def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path, saved):
    model, path = saved
    script = (
        "import os, signal, sys, numpy as np, gaussmix\n"
        "model = gaussmix.load(sys.argv[1])\n"
        "np.lib.format.write_array = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "gaussmix.save(model, sys.argv[2])\n"
    )
    target = tmp_path / "killed.gmm"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", script, str(path), str(target)], env=env, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = [name for name in os.listdir(tmp_path) if name.startswith(".killed.gmm.")]
    assert len(left) == 1 and not target.exists()
    save(model, target)
    assert sorted(os.listdir(tmp_path)) == ["killed.gmm", "model.gmm"]


def test_stale_temporaries_go_and_live_ones_stay(tmp_path, saved):
    model, path = saved
    host = socket.gethostname()
    dead = tmp_path / f".model.gmm.{host}-{_dead_pid()}-abc123.tmp"
    alive = tmp_path / f".model.gmm.{host}-{os.getppid()}-def456.tmp"
    old = tmp_path / ".model.gmm.xyz789.tmp"  # an older gaussmix's name: only its age tells
    recent = tmp_path / ".model.gmm.uvw000.tmp"
    other = tmp_path / f".other.gmm.{host}-{_dead_pid()}-abc123.tmp"
    for temporary in (dead, alive, old, recent, other):
        temporary.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    save(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.gmm", alive.name, recent.name, other.name])


def test_file_system_errors_name_the_target_not_the_temporary(tmp_path, saved):
    model, _ = saved
    target = tmp_path / "folder.gmm"
    target.mkdir()
    with pytest.raises(OSError) as info:
        save(model, target)
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_permission_denied_names_the_target(tmp_path, saved):
    model, _ = saved
    directory = tmp_path / "locked"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=r"cannot write .*locked/m\.gmm: Permission denied") as info:
            save(model, directory / "m.gmm")
        assert ".tmp" not in str(info.value)
    finally:
        directory.chmod(0o700)
