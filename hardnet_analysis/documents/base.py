"""`Document`: the one base of hda's on-disk documents, with their header, writer and reader.

A document is a frozen dataclass deriving from `Document` that names its `FORMAT` and
`VERSION`; its file is ``{"format": FORMAT, "version": VERSION, ...}`` followed by its fields by
name (`records.encode`). Every document has the same four methods:

* ``doc.to_dict()``: the file's JSON object;
* ``doc.write(path)``: that object written to `path` atomically (`fileio.atomic_write_json`);
* ``Cls.from_dict(document, where)``: a parsed JSON object read back: its header checked
  (`records.check_header`), its fields decoded (`records.decode`), then its values checked
  against what no writer gives (`Document.out_of_range`);
* ``Cls.read(path)``: the file at `path` read through `from_dict`.

Anything wrong (a missing or unparsable file, another format or version, a missing key, a value
out of range) is a one-line `UsageError` naming the file, e.g. ``run file 'x.json' is older
version 0 of 'hda-profile-run'; accepted: format 'hda-profile-run' version 1 only (write it again
with this hda)``. A document whose file is more than its fields (a status, keys renamed, an
older version still read) overrides `to_dict` and `decode_fields`, never `write` or `read`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hardnet_analysis.documents.records import check_header, decode, encode, versions_text
from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json, read_json

D = TypeVar("D", bound="Document")


class Document:
    """The base of every document (see the module docstring); subclasses are frozen
    dataclasses that set the class attributes below."""

    FORMAT: ClassVar[str]
    VERSION: ClassVar[int]
    #: Older versions still read (`decode_fields` gets the version found).
    READS: ClassVar[tuple[int, ...]] = ()
    #: What a file of it is called in messages (``run file``) and what it holds (``hda
    #: profile run``).
    FILE: ClassVar[str]
    WHAT: ClassVar[str]
    #: What writes it, for the end of messages (``"`hda profile --out DIR`"``).
    WRITER: ClassVar[str]

    @classmethod
    def accepted(cls) -> str:
        """What this reader accepts, the end of every message about a file's content:
        ``accepted: format 'hda-profile-run' version 1 as `hda profile --out DIR` writes it``."""
        versions = versions_text((cls.VERSION, *cls.READS))
        return f"accepted: format {cls.FORMAT!r} {versions} as {cls.WRITER} writes it"

    def header(self) -> dict[str, Any]:
        """The keys the file starts with: format and version."""
        return {"format": self.FORMAT, "version": self.VERSION}

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object: the header, then every field by name."""
        return {**self.header(), **encode(self)}

    def write(self, path: str | Path) -> Path:
        """Write the file to `path` atomically; returns the path written."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def read(cls: type[D], path: str | Path) -> D:
        """The document in the file at `path` (see `from_dict`)."""
        return cls.from_dict(read_json(path, cls.FILE), f"{cls.FILE} {str(path)!r}")

    @classmethod
    def from_dict(cls: type[D], document: Any, where: str) -> D:
        """The document in the JSON object `document` of the file `where` names (``run file
        'x.json'``); a UsageError naming it unless the header, every field and every value are
        what a writer gives."""
        version = check_header(document, where, cls.WHAT, cls.FORMAT, (cls.VERSION, *cls.READS))
        found = cls.decode_fields(document, where, version)
        problem = found.out_of_range()
        if problem:
            raise UsageError(f"{where}: {problem}; {cls.accepted()}")
        return found

    @classmethod
    def decode_fields(cls: type[D], document: dict[str, Any], where: str, version: int) -> D:
        """The fields of `document`, whose header says `version`, read as this class."""
        return decode(cls, document, where, cls.accepted())

    def out_of_range(self) -> str | None:
        """The first value no writer gives (a negative time, a kind fitted twice), or None."""
        return None
