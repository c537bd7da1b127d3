//! Module argument forms: `key=value` strings with quoting, free form with inline options.
