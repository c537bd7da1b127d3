//! Playbooks: YAML → plays and tasks with source positions, templating, module arguments.
//!
//! - `model`    plays, tasks, blocks, roles as parsed values
//! - `parse`    YAML → model with file:line:column errors
//! - `template` minijinja environment with Ansible's filters and tests
//! - `args`     module argument forms (`k=v` strings, free form, `args:`)
//! - `fqcn`     `ansible.builtin.x` / `ansible.legacy.x` → `x`
//! - `keywords` play and task keywords, control modules, "did you mean"
//! - `yaml`     YAML loader that keeps file:line:column for every node

pub mod ansible_names;
pub mod args;
pub mod fqcn;
pub mod keywords;
pub mod model;
pub mod parse;
pub mod template;
pub mod yaml;
