"""Using a model: one video (`predict.py`), a collection (`batch_predict.py`, resumable records in
`results.py`), pictures of where it looked (`viz.py`) and a faster eval copy (`optimize.py`)."""
