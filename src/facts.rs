//! Facts gathered in one round trip: one POSIX shell script and a pure parser of its output.
