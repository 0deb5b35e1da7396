"""The suite's foundation: imports nothing else of the project, and every other package may import it.

- ``core.data``: the image and split containers (``ImageData``, ``DataSplits``, ``RawDataset``,
  ``DatasetError``, ``stratified_split``).
- ``core.records``: ``Record``, one measured number.
"""
