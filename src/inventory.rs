//! Inventory: hosts, groups, host/group vars, ranges, host patterns.
