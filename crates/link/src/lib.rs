//! Link-level kernel I/O.
