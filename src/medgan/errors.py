"""Errors a user can act on. The CLI prints their message (which names the file or key and the
fix) and exits 2; anything else is a bug and keeps its traceback."""


class MedganError(Exception):
    pass
