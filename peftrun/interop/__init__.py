"""Other tools' configs in, TRL's CLI config out.

`peftrun import` (importer.py): sources.py reads a config and tells its tool; one key-map table per tool
(axolotl.py, llamafactory.py, trl.py, torchtune.py, built from keymap.py's types and convert.py's shared
conversions) translates it; writer.py makes a recipe that validates, drops no-ops and lists what could not be
carried. `peftrun export trl` (export_trl.py). docs.py generates each tool's key map for docs/import-<tool>.md.
Light: no torch, transformers, peft or trl at import.
"""
