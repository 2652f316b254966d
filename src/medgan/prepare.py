"""prepare: raw downloaded data -> labeled 2D slice folders + a manifest, split by case.

The work lives in the `medgan.ingest` package (one adapter per dataset kind, one writer);
this module keeps the names other stages and tests import.

Output contract (every dataset kind):
  data/slices/<dataset>/<split>/<class>/<case>_<index>.png        (ImageFolder layout)
  data/slices/<dataset>/masks/<split>/<class>/<case>_<index>.png  (kinds with masks)
  data/slices/<dataset>/manifest.csv                              (one row per image)
  data/slices/<dataset>/prepare.json                              (what preprocessing decided)
"""

from .ingest import (DataError, check_dataset, list_units, load_images, load_manifest,  # noqa: F401
                     prepare_dataset)
from .ingest.images import window_to_uint8  # noqa: F401
from .ingest.split import SPLITS, assert_no_case_overlap, split_cases  # noqa: F401
from .ingest.volumes import (DISPLAY_ORIENTATION, check_complete, read_display_volume,  # noqa: F401
                             slice_class)


def find_cases(raw, layout: str = "lits"):
    """The (case id, image, label) triples of a `volumes` dataset; DataError listing problems."""
    from .ingest import volumes
    from .ingest.errors import raise_problems

    units, problems = volumes.list_units({"raw": str(raw), "layout": layout})
    raise_problems(problems, str(raw))
    return [u.items[0] for u in units]
