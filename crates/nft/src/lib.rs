//! nf_tables kernel I/O.
