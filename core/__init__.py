"""The suite's foundation: imports nothing else of the project, and every other package may import it.

- ``core.data``: the image and split containers (``ImageData``, ``DataSplits``, ``RawDataset``,
  ``DatasetError``, ``stratified_split``).
- ``core.records``: ``Record``, one measured number.
- ``core.registry``: ``Registry``, named components found by importing their package, each with
  its defining module.
- ``core.files``: verified atomic files (``save_verified``, ``load_verified``,
  ``load_or_set_aside``, ``atomic_write``).
- ``core.seeding``: ``seed_everything``.
- ``core.distributed``: ``world``, ``init_distributed``, ``is_main_process``, ``barrier``.
- ``core.host_memory``: ``retain_freed_memory`` (glibc's malloc keeps freed activations for reuse).
"""
