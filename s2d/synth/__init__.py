"""The synthetic detail benchmark: seeded clips whose class needs a well-placed detail window.

`benchmark.py` makes the clips (`SyntheticDetailDataset`, `render_clip`, `write_video`); `views.py`
shows what reduced and sampled views of a clip see (the no-leak check) and where a model looked;
`score.py` scores a model on a split (accuracy, glyph in view, window-to-glyph distance).
"""
from s2d.synth.benchmark import (CLASSES, DIRECTIONS, GLYPH_PERIOD, GLYPHS, LABEL_LIST, OBJECTS, SPLITS, ClipParams,
                                 SyntheticDetailDataset, glyph_tile, render_clip, sample_params, write_label_list,
                                 write_video)

__all__ = ["CLASSES", "DIRECTIONS", "GLYPHS", "GLYPH_PERIOD", "LABEL_LIST", "OBJECTS", "SPLITS", "ClipParams",
           "SyntheticDetailDataset", "glyph_tile", "render_clip", "sample_params", "write_label_list", "write_video"]
