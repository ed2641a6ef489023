"""The notebooks' toolkit: generic instruments that any chapter may use, and nothing that names a chapter.

Each module is imported on first use (``attention_lib.viz``, ``attention_lib.train``...), so that a training
script that only needs the mechanisms pays for torch alone.
"""
