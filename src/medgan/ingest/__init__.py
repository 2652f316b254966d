"""Ingest: raw datasets as users download them -> labeled 2D slices + a manifest, split by
patient. One adapter module per dataset kind (volumes, class_folders, paired_folders), one
output writer (writer.py), one split (split.py). See medgan.prepare for the public names."""

from .errors import DataError
from .pipeline import (ADAPTERS, check_dataset, convert_unit, list_units, load_images, load_manifest,
                       prepare_dataset, read_unit_list, unit_folder, write_unit_list)

__all__ = ["ADAPTERS", "DataError", "check_dataset", "convert_unit", "list_units", "load_images",
           "load_manifest", "prepare_dataset", "read_unit_list", "unit_folder", "write_unit_list"]
