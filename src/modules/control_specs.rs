//! Parameter declarations of the control modules, which the runner executes itself (they act on
//! variables, handlers or the run): `debug`, `set_fact`, `include_vars`, `include_tasks`, ...
//!
//! Parameters knockplay does not implement are declared refused, so a task using one fails at
//! parse time instead of running without it.

use super::params::{Param, Spec};

const NO_SUBSET: &str = "knockplay gathers one fixed set of facts";

pub const DEBUG: Spec = Spec::new(
    "debug",
    &[
        Param::raw("msg"),
        Param::str("var"),
        Param::int("verbosity").default("0"),
    ],
);

pub const SET_FACT: Spec =
    Spec::new("set_fact", &[Param::bool("cacheable").only("false")]).any_params();

pub const ASSERT: Spec = Spec::new(
    "assert",
    &[
        Param::raw("that").required(),
        Param::raw("fail_msg").aliases(&["msg"]),
        Param::raw("success_msg"),
        Param::bool("quiet").default("false"),
    ],
);

pub const FAIL: Spec = Spec::new("fail", &[Param::raw("msg")]);

pub const META: Spec = Spec::new("meta", &[]).free_form();

pub const INCLUDE_VARS: Spec = Spec::new(
    "include_vars",
    &[
        Param::path("file"),
        Param::path("dir"),
        Param::str("name"),
        Param::str("files_matching").refused("dir= loads every .yml, .yaml and .json file"),
        Param::int("depth").refused("dir= reads only the directory itself"),
        Param::list("extensions").refused("dir= loads .yml, .yaml and .json files"),
        Param::bool("ignore_unknown_extensions").refused("dir= skips files with other extensions"),
        Param::str("hash_behaviour").refused("loaded variables replace earlier ones"),
    ],
)
.free_form();

pub const SETUP: Spec = Spec::new(
    "setup",
    &[
        Param::list("gather_subset").refused(NO_SUBSET),
        Param::list("filter").refused(NO_SUBSET),
        Param::int("gather_timeout").refused(NO_SUBSET),
        Param::path("fact_path").refused("local facts (facts.d) are not gathered"),
    ],
);

pub const GATHER_FACTS: Spec = Spec::new(
    "gather_facts",
    &[Param::bool("parallel").refused(NO_SUBSET)],
);

pub const WAIT_FOR_CONNECTION: Spec = Spec::new(
    "wait_for_connection",
    &[
        Param::float("timeout").default("600"),
        Param::float("delay").default("0"),
        Param::float("sleep").default("1"),
        Param::int("connect_timeout")
            .refused("each attempt uses the inventory's connection timeout"),
    ],
);

pub const PAUSE: Spec = Spec::new(
    "pause",
    &[
        Param::float("seconds"),
        Param::float("minutes"),
        // Shown, never answered: knockplay reads no input (Ansible does the same when stdin is
        // not a terminal).
        Param::str("prompt"),
        Param::bool("echo").default("true"),
    ],
);

pub const INCLUDE_TASKS: Spec =
    Spec::new("include_tasks", &[Param::str("file"), Param::dict("apply")]).free_form();

pub const IMPORT_TASKS: Spec = Spec::new("import_tasks", &[Param::str("file")]).free_form();

/// What `include_role` and `import_role` share: the role and which of its files to use.
const ROLE_COMMON: &[Param] = &[
    Param::str("name").required(),
    Param::str("tasks_from"),
    Param::str("vars_from"),
    Param::str("defaults_from"),
    Param::str("handlers_from"),
];

pub const INCLUDE_ROLE: Spec = Spec::new(
    "include_role",
    &[
        Param::dict("apply"),
        Param::bool("public").refused("role variables are not exported to the play"),
        Param::bool("allow_duplicates").refused("roles run every time they are included"),
    ],
)
.shared(&[ROLE_COMMON]);

pub const IMPORT_ROLE: Spec = Spec::new(
    "import_role",
    &[Param::bool("allow_duplicates").refused("roles run every time they are imported")],
)
.shared(&[ROLE_COMMON]);

pub const IMPORT_PLAYBOOK: Spec = Spec::new("import_playbook", &[]).free_form();

pub const INCLUDE: Spec = Spec::new("include", &[]).free_form();

/// `validate_argument_spec` (also what a role with `meta/argument_specs.yml` runs first).
pub const VALIDATE_ARGUMENT_SPEC: Spec = Spec::new(
    "validate_argument_spec",
    &[
        Param::dict("argument_spec").required(),
        Param::dict("provided_arguments"),
        Param::raw("validate_args_context"),
    ],
);

/// `add_host`: the other parameters become the new host's variables.
pub const ADD_HOST: Spec = Spec::new(
    "add_host",
    &[
        Param::str("name").required().aliases(&["host", "hostname"]),
        Param::list("groups").aliases(&["group", "groupname"]),
    ],
)
.any_params();

pub const GROUP_BY: Spec = Spec::new(
    "group_by",
    &[Param::str("key").required(), Param::list("parents")],
);

/// Every control module, by canonical name.
pub const CONTROL: &[&Spec] = &[
    &DEBUG,
    &SET_FACT,
    &ASSERT,
    &FAIL,
    &META,
    &INCLUDE_VARS,
    &SETUP,
    &GATHER_FACTS,
    &WAIT_FOR_CONNECTION,
    &PAUSE,
    &INCLUDE_TASKS,
    &IMPORT_TASKS,
    &INCLUDE_ROLE,
    &IMPORT_ROLE,
    &IMPORT_PLAYBOOK,
    &INCLUDE,
    &ADD_HOST,
    &GROUP_BY,
    &VALIDATE_ARGUMENT_SPEC,
];

/// The declaration of control module `short` (a short name, no FQCN prefix).
pub fn lookup(short: &str) -> Option<&'static Spec> {
    CONTROL.iter().copied().find(|s| s.module == short)
}
