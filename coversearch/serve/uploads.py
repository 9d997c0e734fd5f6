"""Uploaded files: what is accepted, and where it is kept while it is analysed.

An upload is copied (with its size counted against the limit) into a private
temporary file -- ``mkstemp`` (mode 0600) inside the server's own ``mkdtemp``
folder (0700) -- and removed as soon as its request is answered. Nothing an
upload names is ever used as a path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from coversearch.errors import DataError

H5_EXTENSIONS = (".h5", ".hdf5")
# the HDF5 superblock signature, at 0 or at a power-of-two offset >= 512 (user block)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CHUNK = 1 << 20


class UploadTooLarge(Exception):
    """The upload exceeds the size limit (HTTP 413)."""


class UnsupportedType(Exception):
    """The upload is not a type the server analyses (HTTP 415)."""


def audio_extensions() -> tuple[str, ...]:
    """Audio file extensions the audio stage decodes (empty if that stage is absent)."""
    try:
        from coversearch.audio import AUDIO_EXTENSIONS
    except ImportError:
        return ()
    return tuple(e if e.startswith(".") else f".{e}" for e in (x.lower() for x in AUDIO_EXTENSIONS))


def classify(filename: str | None) -> tuple[str, str]:
    """The kind of an upload from its name: ``("h5" | "audio", extension)``.

    Raises:
        UnsupportedType: no name, or an extension that is neither h5 nor audio.
    """
    name = os.path.basename(filename or "")
    ext = os.path.splitext(name)[1].lower()
    if ext in H5_EXTENSIONS:
        return "h5", ext
    audio = audio_extensions()
    if ext and ext in audio:
        return "audio", ext
    accepted = ", ".join(H5_EXTENSIONS + audio)
    raise UnsupportedType(f"{name or 'the upload'}: unsupported file type {ext or '(no extension)'}; "
                          f"send one of {accepted}")


def _is_hdf5(path: Path) -> bool:
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def save_private(src, filename: str | None, folder: str | os.PathLike, limit: int) -> tuple[Path, str]:
    """Copy an upload into a private temporary file.

    Args:
        src: readable binary file object (the upload).
        filename: the name the client gave (only its extension is used).
        folder: the server's private temporary folder.
        limit: largest accepted size in bytes.

    Returns:
        (path of the 0600 temporary file, kind ``"h5"`` or ``"audio"``); the
        caller removes it.

    Raises:
        UnsupportedType: wrong extension, or an h5 without the HDF5 signature.
        UploadTooLarge: more than ``limit`` bytes.
        DataError: an empty upload.
    """
    kind, ext = classify(filename)
    fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=ext, dir=folder)
    path = Path(tmp)
    try:
        n = 0
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                n += len(chunk)
                if n > limit:
                    raise UploadTooLarge(f"{os.path.basename(filename or '')}: larger than the "
                                         f"{limit / 1048576:.0f} MB upload limit")
                out.write(chunk)
        if n == 0:
            raise DataError(f"{os.path.basename(filename or '')}: the upload is empty")
        if kind == "h5" and not _is_hdf5(path):
            raise UnsupportedType(f"{os.path.basename(filename or '')}: not an HDF5 file (no HDF5 signature)")
        return path, kind
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def private_folder() -> Path:
    """A fresh 0700 folder for this server's uploads."""
    return Path(tempfile.mkdtemp(prefix="coversearch-serve-"))


def remove_folder(folder: str | os.PathLike) -> None:
    shutil.rmtree(folder, ignore_errors=True)
