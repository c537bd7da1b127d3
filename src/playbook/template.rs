//! minijinja environment with Ansible's filters and tests; strict undefined; type-preserving renders.
