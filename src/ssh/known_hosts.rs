//! knockplay's own known_hosts file and the host-key policy (strict, accept-new, off).
