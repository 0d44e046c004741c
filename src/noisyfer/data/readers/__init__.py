"""Readers of the benchmark datasets as distributed, registered as datasets (``data=rafdb`` ...).

==========  ===========================================================  =================
dataset     files read under ``data.root``                                default image side
==========  ===========================================================  =================
rafdb       EmoLabel/list_patition_label.txt, Image/aligned (original)   100 (native)
fer2013     fer2013.csv                                                   48 (native)
ferplus     fer2013.csv + fer2013new.csv                                  48 (native)
affectnet   training.csv / validation.csv, Manually_Annotated_Images/    112 (face crops)
sfew        Train/ and Val/ with seven class folders                     112
folder      <train|test>/<class>/*                                        112
csv         train.csv / test.csv with path,label[,valence,arousal]       112
==========  ===========================================================  =================

The first use decodes every image once (in parallel), converts it to RGB, crops and resizes it and
stores the result in the decoded cache (:mod:`noisyfer.data.cache`); later runs load it in well
under a second. Labels come in ``data.class_order`` (the dataset's own order unless set; see
:mod:`.orders`). Bad input stops the build with an error naming the file and line unless
``data.on_bad=skip``, which leaves bad items out and records them (:mod:`.report`).
"""

from __future__ import annotations

from . import affectnet, csvlist, fer2013, ferplus, folders, rafdb  # noqa: F401  (register the datasets)
from .decode import decode_files, decode_image
from .noisy_files import label_file_format, rafdb_noisy_labels
from .orders import NAMED_ORDERS, code_lookup, resolve_class_order
from .report import SKIPPED_FILE, BadItem, ReadReport, ReadSplits

__all__ = [
    "NAMED_ORDERS",
    "SKIPPED_FILE",
    "BadItem",
    "ReadReport",
    "ReadSplits",
    "code_lookup",
    "decode_files",
    "decode_image",
    "label_file_format",
    "rafdb_noisy_labels",
    "resolve_class_order",
]
