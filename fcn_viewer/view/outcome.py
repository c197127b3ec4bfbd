"""What a background job answers when it has no value to give: errors and cancellations as plain values."""

from __future__ import annotations

from dataclasses import dataclass

from fcn_viewer.errors import FCNViewerError


@dataclass(frozen=True)
class JobFailed:
    """The job raised; ``message`` says why, naming the file where there is one."""

    message: str


@dataclass(frozen=True)
class JobCancelled:
    """The job was stopped on request before it finished."""

    message: str


def error_message(error: BaseException) -> str:
    """Our errors by their message; others by type too, as their text alone may be cryptic."""
    return str(error) if isinstance(error, FCNViewerError) else f"{type(error).__name__}: {error}"
