"""The one error type of ingest: raw data that cannot be used, named with what to do."""


from ..errors import MedganError


class DataError(MedganError, ValueError):
    """Raw data cannot be ingested; the message names the file and the fix."""


def raise_problems(problems: list[str], what: str) -> None:
    """Raise one DataError listing every problem (nnU-Net style: all at once)."""
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise DataError(f"{what}: {len(problems)} problem(s) in the raw data:\n{lines}")
