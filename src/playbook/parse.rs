//! YAML → playbook model, with errors that name file:line:column.
