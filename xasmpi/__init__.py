"""xasmpi: X-ray absorption spectra of nanoclusters to atomic structure, at HPC scale."""
__version__ = "0.1.0"
