"""Progress of long operations (files and bytes), as a small interface with a null object.

The SDK reports to a :class:`Progress`; the CLI passes one that draws rich progress
bars, everything else gets :class:`NoProgress`. Calls come from the thread that
started the work, a few times a second.

>>> p = NoProgress()
>>> p.start(10, 1024); p.update(5, 512); p.finish()
"""

from __future__ import annotations

__all__ = ["NoProgress", "Progress"]


class Progress:
    """Hears how far an operation is: ``start`` once, ``update`` often, ``finish`` once."""

    def start(self, files: int, size: int) -> None:
        """The work ahead: ``files`` files of ``size`` bytes in all."""

    def update(self, files: int, size: int) -> None:
        """The work done so far (totals, not increments)."""

    def finish(self) -> None:
        """The work ended (done, failed or cancelled)."""


class NoProgress(Progress):
    """Reports nothing."""
