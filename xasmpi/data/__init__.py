"""Reference data of the science core (no MPI, no HDF5): :mod:`xasmpi.data.crystals`."""
