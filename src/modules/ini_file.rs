//! `ini_file` (community.general): one option of one section of an INI file set, added, changed
//! or removed, or a whole section removed. The edit is the pure [`edit`], with the collection's
//! exact rules (a hidden leading section for options outside any section, the option also found
//! commented out, new options after the section's last active line, `exclusive` removing the
//! other values); reading and writing go through [`TextFile`], as for `lineinfile`.

use regex::Regex;

use super::args::Args;
use super::plan::finish;
use super::textfile::TextFile;
use super::write::{Attrs, FILE_COMMON};
use super::{Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};

pub struct IniFile;

const SPEC: Spec = Spec::new(
    "ini_file",
    &[
        Param::path("path").required().aliases(&["dest"]),
        Param::str("section"),
        Param::raw("section_has_values")
            .refused("selecting a section by the values it holds is not implemented"),
        Param::str("option"),
        Param::str("value"),
        Param::list("values"),
        Param::bool("backup").default("false"),
        Param::str("state")
            .choices(&["absent", "present"])
            .default("present"),
        Param::bool("exclusive").default("true"),
        Param::bool("no_extra_spaces").default("false"),
        Param::bool("ignore_spaces").default("false"),
        Param::bool("allow_no_value").default("false"),
        Param::bool("modify_inactive_option").default("true"),
        Param::bool("create").default("true"),
        Param::bool("follow").default("false"),
    ],
)
.shared(&[FILE_COMMON]);

/// What to do to the file (everything [`edit`] reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniArgs {
    /// None or empty: the options before the first section.
    pub section: Option<String>,
    pub option: Option<String>,
    /// The wanted values, duplicates dropped (`value: v` is `values: [v]`).
    pub values: Vec<String>,
    pub present: bool,
    pub exclusive: bool,
    pub no_extra_spaces: bool,
    pub ignore_spaces: bool,
    pub allow_no_value: bool,
    pub modify_inactive_option: bool,
}

impl IniArgs {
    /// The edit's arguments; `Err` holds the module's failure message for a missing value.
    pub fn from_args(args: &Args<'_>) -> Result<Result<Self, String>, ModuleError> {
        args.exclusive("value", "values")?;
        let present = args.choice("state")?.as_deref() != Some("absent");
        let allow_no_value = args.bool("allow_no_value")?;
        let value = args.str("value")?;
        let values = args.list("values")?;
        if present
            && !allow_no_value
            && value.is_none()
            && values.as_ref().is_none_or(Vec::is_empty)
        {
            return Ok(Err(
                "Parameter 'value(s)' must be defined if state=present and \
                 allow_no_value=False."
                    .into(),
            ));
        }
        let mut unique: Vec<String> = Vec::new();
        for v in value.map(|v| vec![v]).or(values).unwrap_or_default() {
            if !unique.contains(&v) {
                unique.push(v);
            }
        }
        Ok(Ok(Self {
            section: args.str("section")?,
            option: args.str("option")?.filter(|o| !o.is_empty()),
            values: unique,
            present,
            exclusive: args.bool("exclusive")?,
            no_extra_spaces: args.bool("no_extra_spaces")?,
            ignore_spaces: args.bool("ignore_spaces")?,
            allow_no_value,
            modify_inactive_option: args.bool("modify_inactive_option")?,
        }))
    }
}

/// What [`edit`] made of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    pub changed: bool,
    pub msg: &'static str,
}

/// The name of the hidden section holding the options before the first real one (the
/// collection's own choice, so that no file's section can be taken for it).
const FAKE_SECTION: &str = "ad01e11446efb704fcdbdb21f2c43757423d91c5";

/// An option line: `[ \t]*[#;]?[ \t]*option[ \t]*(=|end)[ \t]*value` (the comment mark only when
/// `inactive` too).
struct OptionRe(Regex);

/// One match of [`OptionRe`].
struct OptMatch {
    commented: bool,
    has_sep: bool,
    value: String,
}

impl OptionRe {
    fn new(option: &str, inactive: bool) -> Self {
        let comment = if inactive { "[#;]?" } else { "" };
        let pattern = format!(
            r"^[ \t]*(?P<comment>{comment})[ \t]*{}[ \t]*(?P<sep>=|$)[ \t]*(?P<value>.*)",
            regex::escape(option)
        );
        Self(Regex::new(&pattern).expect("escaped option makes a valid pattern"))
    }

    /// Python's `re.match` on a line: `$` also matches before its final newline.
    fn find(&self, line: &str) -> Option<OptMatch> {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let c = self.0.captures(body)?;
        let text = |n: &str| c.name(n).map_or("", |m| m.as_str());
        Some(OptMatch {
            commented: !text("comment").is_empty(),
            has_sep: !text("sep").is_empty(),
            value: text("value").to_string(),
        })
    }
}

/// Blank or comment-only (`^[ \t]*([#;].*)?$`).
fn blank_or_comment(line: &str) -> bool {
    let t = line.strip_suffix('\n').unwrap_or(line);
    let t = t.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#') || t.starts_with(';')
}

/// Python's text-mode `readlines` of a file opened as `utf-8-sig`: a byte-order mark dropped,
/// `\r\n` and `\r` read as `\n`, each line keeping its `\n`.
fn read_lines(contents: &str) -> Vec<String> {
    let text = contents.strip_prefix('\u{feff}').unwrap_or(contents);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// The state of one section's lines while they are edited.
struct Section<'a> {
    lines: Vec<String>,
    /// Lines already set by this run (not to be set or removed again).
    done: Vec<bool>,
    changed: bool,
    msg: &'static str,
    a: &'a IniArgs,
    any: OptionRe,
}

impl Section<'_> {
    /// Replace line `i` by `new` unless equal (or, with `ignore_spaces`, equal but for spaces).
    fn set_line(&mut self, i: usize, new: String) {
        let mut differs = None;
        if self.a.ignore_spaces {
            if let Some(old) = self.any.find(&self.lines[i]).filter(|m| !m.commented) {
                differs = self.any.find(&new).map(|n| n.value != old.value);
            }
        }
        if differs.unwrap_or(self.lines[i] != new) {
            self.lines[i] = new;
            self.changed = true;
            self.msg = "option changed";
        }
        self.done[i] = true;
    }
}

/// `state=present` inside the section found: set matching lines, drop the others (`exclusive`),
/// add what is missing after the section's last active line.
fn present(s: &mut Section<'_>, option: Option<&str>, values: &mut Vec<String>, sep: &str) {
    let a = s.a;
    let matcher = option.map(|o| OptionRe::new(o, a.modify_inactive_option));
    let mut no_value_present = false;
    if let (Some(o), Some(m)) = (option, &matcher) {
        for i in 0..s.lines.len() {
            let Some(found) = m.find(&s.lines[i]) else {
                continue;
            };
            if !values.is_empty() && values.contains(&found.value) {
                let v = found.value;
                let new = if v.is_empty() && a.allow_no_value {
                    no_value_present = true;
                    format!("{o}\n")
                } else {
                    format!("{o}{sep}{v}\n")
                };
                s.set_line(i, new);
                values.retain(|x| *x != v);
            } else if values.is_empty() && a.allow_no_value {
                s.set_line(i, format!("{o}\n"));
                no_value_present = true;
                break;
            }
        }
    }
    if a.exclusive && !a.allow_no_value {
        // An active or commented-out `option=...` line, not a comment merely naming the option.
        let setting = |s: &Section<'_>, i: usize| {
            !s.done[i]
                && matcher
                    .as_ref()
                    .and_then(|m| m.find(&s.lines[i]))
                    .is_some_and(|f| !f.commented || f.has_sep)
        };
        if let (Some(o), false) = (option, values.is_empty()) {
            for i in 0..s.lines.len() {
                if setting(s, i) {
                    let v = values.remove(0);
                    s.set_line(i, format!("{o}{sep}{v}\n"));
                    if values.is_empty() {
                        break;
                    }
                }
            }
        }
        for i in (1..s.lines.len()).rev() {
            if setting(s, i) {
                s.lines.remove(i);
                s.done.remove(i);
                s.changed = true;
                s.msg = "option changed";
            }
        }
    }
    let Some(o) = option else { return };
    if let Some(i) = (1..=s.lines.len())
        .rev()
        .find(|&i| !blank_or_comment(&s.lines[i - 1]))
    {
        if !values.is_empty() {
            for v in values.iter().rev() {
                s.lines.insert(i, format!("{o}{sep}{v}\n"));
            }
            s.msg = "option added";
            s.changed = true;
        } else if a.allow_no_value && !no_value_present {
            s.lines.insert(i, format!("{o}\n"));
            s.msg = "option added";
            s.changed = true;
        }
    }
}

/// `state=absent` inside the section found: the option's lines (only those holding one of the
/// values unless `exclusive`), or the whole section when no option is given.
fn absent(s: &mut Section<'_>, option: Option<&str>, values: &[String]) {
    let Some(o) = option else {
        if !s.lines.is_empty() {
            s.lines.clear();
            s.msg = "section removed";
            s.changed = true;
        }
        return;
    };
    if !s.a.exclusive && values.is_empty() {
        return;
    }
    let active = OptionRe::new(o, false);
    let before = s.lines.len();
    s.lines.retain(|l| match active.find(l) {
        Some(m) => !s.a.exclusive && !values.contains(&m.value),
        None => true,
    });
    if s.lines.len() != before {
        s.changed = true;
        s.msg = "option changed";
    }
}

/// The INI file `contents` with `a` applied. Pure.
pub fn edit(contents: &str, a: &IniArgs) -> Edited {
    let mut lines = read_lines(contents);
    let mut changed = false;
    if lines.is_empty() {
        lines.push("\n".into());
    }
    if let Some(last) = lines.last_mut().filter(|l| !l.ends_with('\n')) {
        last.push('\n');
        changed = true;
    }
    // A hidden first section holds the options before the first real one; a last "[" ends the
    // last section.
    lines.insert(0, format!("[{FAKE_SECTION}]"));
    lines.push("[".into());
    let section = a
        .section
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| FAKE_SECTION.to_string());
    let header = Regex::new(&format!(r"^\[\s*{}\s*\]", regex::escape(section.trim())))
        .expect("escaped section makes a valid pattern");
    let (mut start, mut end, mut within) = (0, 0, false);
    for (i, line) in lines.iter().enumerate() {
        if within && line.starts_with('[') {
            end = i;
            break;
        }
        if header.is_match(line) {
            within = true;
            start = i;
        }
    }
    let after = lines.split_off(end);
    let section_lines = lines.split_off(start);
    let mut s = Section {
        done: vec![false; section_lines.len()],
        lines: section_lines,
        changed,
        msg: "OK",
        a,
        any: OptionRe::new(a.option.as_deref().unwrap_or_default(), true),
    };
    let option = a.option.as_deref();
    let mut values = a.values.clone();
    let sep = if a.no_extra_spaces { "=" } else { " = " };
    if a.present {
        present(&mut s, option, &mut values, sep);
    } else {
        absent(&mut s, option, &values);
    }
    let (mut changed, mut msg) = (s.changed, s.msg);
    lines.extend(s.lines);
    lines.extend(after);
    lines.remove(0);
    lines.pop();
    if !within && a.present {
        lines.push(format!("[{section}]\n"));
        msg = "section and option added";
        match option {
            Some(o) if !values.is_empty() => {
                lines.extend(values.iter().map(|v| format!("{o}{sep}{v}\n")));
            }
            Some(o) if a.allow_no_value => lines.push(format!("{o}\n")),
            _ => msg = "only section added",
        }
        changed = true;
    }
    Edited {
        text: lines.concat(),
        changed,
        msg,
    }
}

impl Module for IniFile {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let path = args.req_str("path")?;
        let tf = TextFile {
            module: args.module(),
            path: path.clone(),
            create: args.bool("create")?,
            backup: args.bool("backup")?,
            attrs: Attrs::from_args_without_preserve(args)?,
            validate: None,
        };
        let follow = args.bool("follow")?;
        let ia = match IniArgs::from_args(args)? {
            Ok(ia) => ia,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        let mut st = match tf.probe(ctx)? {
            Ok(st) => st,
            Err(r) => return Ok(r),
        };
        let current = match tf.current(&st) {
            Ok(c) => c,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        if current.is_none() && !tf.create {
            let shown = match (&st.real_path, follow && st.is_link) {
                (Some(real), true) => real.clone(),
                _ => path.clone(),
            };
            let mut r = ModuleResult::failed(format!("Destination {shown} does not exist!"));
            r.rc = Some(257);
            return Ok(r);
        }
        let text = match current.as_deref().map(std::str::from_utf8) {
            None => "",
            Some(Ok(t)) => t,
            Some(Err(_)) => {
                return Ok(ModuleResult::failed(format!("{path} is not UTF-8 text")));
            }
        };
        let e = edit(text, &ia);
        // Without `follow`, a link at the path is replaced by the new file (the collection
        // renames over the path as given); with it, the link's target is edited.
        if !follow {
            st.is_link = false;
        }
        let new = if e.changed {
            e.text.into_bytes()
        } else {
            // Nothing to change (a byte-order mark or `\r\n` alone are no reason to write).
            current.clone().unwrap_or_default()
        };
        let old = current.as_deref().filter(|_| st.exists());
        let mut outcome = if (current.is_none() || ctx.check_mode) && !e.changed {
            // Nothing to write and no file: nothing at all (not even attributes). In check mode
            // the collection looks at the content only, attributes are not checked.
            super::plan::Outcome::new(super::plan::Plan::NoChange)
        } else {
            tf.outcome(&st, old, new, String::new())
        };
        outcome.result.data.remove("backup");
        finish(ctx, outcome.msg(e.msg).set("path", path.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    /// (args, file before, file after (None: unchanged), msg), from community.general's own
    /// `do_ini` run on the same input.
    #[test]
    fn edits_like_community_general() {
        let cases: &[(serde_json::Value, &str, Option<&str>, &str)] = &[
            (
                json!({"section": "s", "option": "o", "value": "v", "path": "f"}),
                "",
                Some("\n[s]\no = v\n"),
                "section and option added",
            ),
            (
                json!({"section": "s", "option": "o", "value": "v", "path": "f"}),
                "[a]\nx=1\n",
                Some("[a]\nx=1\n[s]\no = v\n"),
                "section and option added",
            ),
            (
                json!({"section": "a", "option": "y", "value": "2", "path": "f"}),
                "[a]\nx=1\n\n[b]\nz=3\n",
                Some("[a]\nx=1\ny = 2\n\n[b]\nz=3\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "x", "value": "2", "path": "f"}),
                "[a]\nx=1\n\n[b]\nz=3\n",
                Some("[a]\nx = 2\n\n[b]\nz=3\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "value": "1", "path": "f"}),
                "[a]\nx = 1\n",
                None,
                "OK",
            ),
            (
                json!({"section": "a", "option": "x", "value": "1", "path": "f"}),
                "[a]\nx=1\n",
                Some("[a]\nx = 1\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "value": "1", "ignore_spaces": true, "path": "f"}),
                "[a]\nx=1\n",
                None,
                "OK",
            ),
            (
                json!({"section": "a", "option": "x", "value": "1", "no_extra_spaces": true, "path": "f"}),
                "[a]\nx = 1\n",
                Some("[a]\nx=1\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "state": "absent", "path": "f"}),
                "[a]\nx=1\ny=2\nx=3\n[b]\nx=4\n",
                Some("[a]\ny=2\n[b]\nx=4\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "state": "absent", "exclusive": false, "values": ["3"], "path": "f"}),
                "[a]\nx=1\ny=2\nx=3\n",
                Some("[a]\nx=1\ny=2\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "state": "absent", "path": "f"}),
                "g=0\n[a]\nx=1\n[b]\ny=2\n",
                Some("g=0\n[b]\ny=2\n"),
                "section removed",
            ),
            (
                json!({"section": "zz", "state": "absent", "path": "f"}),
                "[a]\nx=1\n",
                None,
                "OK",
            ),
            (
                json!({"option": "g", "value": "1", "path": "f"}),
                "[a]\nx=1\n",
                Some("g = 1\n[a]\nx=1\n"),
                "option added",
            ),
            (
                json!({"option": "g", "value": "1", "path": "f"}),
                "# top\ng=0\n[a]\nx=1\n",
                Some("# top\ng = 1\n[a]\nx=1\n"),
                "option changed",
            ),
            (
                json!({"option": "g", "value": "1", "path": "f"}),
                "",
                Some("g = 1\n\n"),
                "option added",
            ),
            (
                json!({"option": "g", "value": "1", "path": "f"}),
                "",
                Some("g = 1\n\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "x", "values": ["1", "2"], "path": "f"}),
                "[a]\nx=0\ny=5\n",
                Some("[a]\nx = 1\ny=5\nx = 2\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "x", "values": ["1", "2"], "path": "f"}),
                "[a]\nx=2\nx=3\nx=1\ny=5\n",
                Some("[a]\nx = 2\nx = 1\ny=5\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "values": ["1", "2"], "exclusive": false, "path": "f"}),
                "[a]\nx=2\nx=3\ny=5\n",
                Some("[a]\nx = 2\nx=3\ny=5\nx = 1\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "x", "values": ["2", "1", "2"], "path": "f"}),
                "[a]\n",
                Some("[a]\nx = 2\nx = 1\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "flag", "allow_no_value": true, "path": "f"}),
                "[a]\nx=1\n",
                Some("[a]\nx=1\nflag\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "flag", "allow_no_value": true, "path": "f"}),
                "[a]\nflag\nx=1\n",
                None,
                "OK",
            ),
            (
                json!({"section": "a", "option": "flag", "allow_no_value": true, "path": "f"}),
                "[a]\nflag = 3\n",
                Some("[a]\nflag\n"),
                "option changed",
            ),
            (
                json!({"section": "new", "option": "flag", "allow_no_value": true, "path": "f"}),
                "[a]\n",
                Some("[a]\n[new]\nflag\n"),
                "section and option added",
            ),
            (
                json!({"section": "new", "allow_no_value": true, "path": "f"}),
                "[a]\n",
                Some("[a]\n[new]\n"),
                "only section added",
            ),
            (
                json!({"section": "a", "option": "x", "value": "9", "path": "f"}),
                "[a]\n# x = 1\ny=2\n",
                Some("[a]\nx = 9\ny=2\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "value": "9", "modify_inactive_option": false, "path": "f"}),
                "[a]\n# x = 1\ny=2\n",
                Some("[a]\n# x = 1\ny=2\nx = 9\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "x", "value": "9", "path": "f"}),
                "[a]\n; x is the thing\ny=2\n",
                Some("[a]\n; x is the thing\ny=2\nx = 9\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "x", "value": "9", "path": "f"}),
                "[a]\ny=2\n\n# trailing comment\n\n[b]\n",
                Some("[a]\ny=2\nx = 9\n\n# trailing comment\n\n[b]\n"),
                "option added",
            ),
            (
                json!({"section": "a", "option": "x", "value": "1", "path": "f"}),
                "[a]\nx=1",
                Some("[a]\nx = 1\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "value": "1", "path": "f"}),
                "\u{feff}[a]\r\nx = 1\r\n",
                None,
                "OK",
            ),
            (
                json!({"section": "a", "option": "x", "value": "2", "path": "f"}),
                "\u{feff}[a]\r\nx = 1\r\n",
                Some("[a]\nx = 2\n"),
                "option changed",
            ),
            (
                json!({"section": " a ", "option": "x", "value": "2", "path": "f"}),
                "[ a ]\nx = 1\n",
                Some("[ a ]\nx = 2\n"),
                "option changed",
            ),
            (
                json!({"section": "a.b", "option": "x", "value": "2", "path": "f"}),
                "[aXb]\nx = 1\n",
                Some("[aXb]\nx = 1\n[a.b]\nx = 2\n"),
                "section and option added",
            ),
            (
                json!({"section": "a", "option": "x", "state": "absent", "path": "f"}),
                "[a]\n# x = 1\n",
                None,
                "OK",
            ),
            (
                json!({"state": "absent", "path": "f"}),
                "g=1\n[a]\nx=1\n",
                Some("x=1\n"),
                "section removed",
            ),
            (
                json!({"option": "g", "state": "absent", "path": "f"}),
                "g=1\n[a]\ng=2\n",
                Some("[a]\ng=2\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "value": "", "path": "f"}),
                "[a]\nx=1\n",
                Some("[a]\nx = \n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "value": "v", "path": "f"}),
                "[a]\nx=1\n[a]\nx=2\n",
                Some("[a]\nx = v\n[a]\nx=2\n"),
                "option changed",
            ),
            (
                json!({"section": "a", "option": "x", "value": "v", "path": "f"}),
                "[a]\n\tx\t=\t1  \n",
                Some("[a]\nx = v\n"),
                "option changed",
            ),
        ];
        for (a, before, after, msg) in cases {
            let ia = parse_with(&SPEC, a.clone(), IniArgs::from_args)
                .unwrap()
                .unwrap();
            let e = edit(before, &ia);
            assert_eq!(e.changed, after.is_some(), "changed for {a} on {before:?}");
            if let Some(after) = after {
                assert_eq!(e.text, *after, "{a} on {before:?}");
                // Removing the options before the first section also drops that section's
                // header (the collection's doing): not idempotent, as there.
                if ia.present || ia.option.is_some() || ia.section.is_some() {
                    let again = edit(&e.text, &ia);
                    assert!(
                        !again.changed,
                        "second run changed for {a}: {:?}",
                        again.text
                    );
                }
            }
            assert_eq!(e.msg, *msg, "msg for {a} on {before:?}");
        }
    }

    fn run(a: serde_json::Value, check: bool) -> ModuleResult {
        let mut r = LocalRemote::default();
        IniFile
            .execute(&args(a), &mut ctx(&mut r, check, true, vec![]))
            .unwrap()
    }

    #[test]
    fn runs_on_a_real_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/app.ini");
        let p = f.to_str().unwrap();
        let set = |v: &str| json!({"path": p, "section": "db", "option": "port", "value": v});
        // Check mode: reported, nothing created.
        let res = run(set("5432"), true);
        assert!(res.changed && !f.exists(), "{res:?}");
        assert_eq!(res.msg.as_deref(), Some("section and option added"));
        assert_eq!(res.diff[0].after, "\n[db]\nport = 5432\n");
        let res = run(set("5432"), false);
        assert!(res.changed, "{res:?}");
        assert_eq!(res.data["path"], json!(p));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "\n[db]\nport = 5432\n"
        );
        let res = run(set("5432"), false);
        assert!(!res.changed && res.msg.as_deref() == Some("OK"), "{res:?}");
        // Attributes alone: changed, the module's own message.
        let mut a = set("5432");
        a["mode"] = json!("0600");
        let res = run(a, false);
        assert!(res.changed && res.msg.as_deref() == Some("OK"), "{res:?}");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        // A link: followed with `follow`, replaced by the file without.
        let l = dir.path().join("link.ini");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let on_link = |follow: bool| json!({"path": l.to_str().unwrap(), "section": "db", "option": "host", "value": "h", "follow": follow});
        assert!(run(on_link(true), false).changed);
        assert!(std::fs::symlink_metadata(&l)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(std::fs::read_to_string(&f).unwrap().ends_with("host = h\n"));
        let mut a = on_link(false);
        a["value"] = json!("h2");
        assert!(run(a, false).changed);
        assert!(std::fs::symlink_metadata(&l).unwrap().file_type().is_file());
        assert!(std::fs::read_to_string(&f).unwrap().ends_with("host = h\n"));
    }

    #[test]
    fn fails_and_refuses_like_the_collection() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none.ini");
        let p = p.to_str().unwrap();
        let res = run(
            json!({"path": p, "section": "s", "option": "o", "value": "v", "create": false}),
            false,
        );
        assert!(res.failed);
        assert_eq!(res.rc, Some(257));
        assert_eq!(res.msg.unwrap(), format!("Destination {p} does not exist!"));
        let res = run(json!({"path": p, "section": "s", "option": "o"}), false);
        assert_eq!(
            res.msg.as_deref(),
            Some("Parameter 'value(s)' must be defined if state=present and allow_no_value=False.")
        );
        let mut r = LocalRemote::default();
        let refused = |a: serde_json::Value, r: &mut LocalRemote| {
            IniFile
                .execute(&args(a), &mut ctx(r, false, false, vec![]))
                .unwrap_err()
                .to_string()
        };
        let e = refused(
            json!({"path": p, "section": "s", "section_has_values": [{"option": "a"}]}),
            &mut r,
        );
        assert!(
            e.starts_with("ini_file: parameter 'section_has_values' is not supported by knockplay"),
            "{e}"
        );
        let e = refused(
            json!({"path": p, "option": "o", "value": "a", "values": ["b"]}),
            &mut r,
        );
        assert!(e.contains("mutually exclusive: value|values"), "{e}");
        let e = refused(json!({"path": p, "key": "o", "value": "a"}), &mut r);
        assert!(e.contains("unsupported parameter 'key'"), "{e}");
        assert!(r.calls.is_empty());
        assert!(!std::path::Path::new(p).exists());
    }
}
