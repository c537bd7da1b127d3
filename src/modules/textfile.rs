//! A text file edited in place by `lineinfile` and `blockinfile`: the arguments they share, the read
//! half (one probe round trip returning state and content, links followed) and the write half (an
//! atomic write only when the content changed, else only attribute fixes). Also the regular
//! expression parameters both take.

use regex::bytes::Regex;

use super::args::Args;
use super::params::Param;
use super::plan::{diff_text, Outcome, Plan};
use super::probe::{probe, FileState, Kind, ProbeReq};
use super::write::{sent, validate_arg, write_file_script, Attrs, WriteSpec};
use super::{FileDiff, ModuleCtx, ModuleError, ModuleResult};

/// The parameters `lineinfile` and `blockinfile` share: the file ([`TextFile`]), the state and
/// where new text goes.
pub const TEXT_FILE_COMMON: &[Param] = &[
    Param::path("path")
        .required()
        .aliases(&["dest", "destfile", "name"]),
    Param::str("state")
        .choices(&["present", "absent"])
        .default("present"),
    Param::str("insertafter"),
    Param::str("insertbefore"),
    Param::bool("create").default("false"),
    Param::bool("backup").default("false"),
    Param::str("validate"),
];

/// Compile a Python-style regular expression with a clear error naming the parameter.
pub fn compile(key: &str, pattern: &str) -> Result<Regex, ModuleError> {
    Regex::new(pattern).map_err(|e| {
        ModuleError::Args(format!(
            "parameter '{key}' is not a valid regular expression '{pattern}': {e}"
        ))
    })
}

/// Split after every `\n`, keeping the separators (Python's `readlines`).
pub fn split_lines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split_inclusive(|&b| b == b'\n')
        .map(|l| l.to_vec())
        .collect()
}

/// A text file edited in place: the read (probe) and write halves shared by `lineinfile` and
/// `blockinfile`.
#[derive(Debug, Clone, Default)]
pub struct TextFile {
    pub module: &'static str,
    pub path: String,
    pub create: bool,
    pub backup: bool,
    pub attrs: Attrs,
    pub validate: Option<String>,
}

/// Largest file these modules edit (its content travels in the probe).
pub const TEXT_MAX: u64 = 64 * 1024 * 1024;

impl TextFile {
    /// `path`, `create`, `backup`, `mode`/`owner`/`group` and `validate`.
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let path = Some(args.req_str("path")?)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ModuleError::Args("missing required parameter 'path'".into()))?;
        let attrs = Attrs::from_args_without_preserve(args)?;
        let validate = validate_arg(args)?;
        Ok(Self {
            module: args.module(),
            path,
            create: args.bool("create")?,
            backup: args.bool("backup")?,
            attrs,
            validate,
        })
    }

    /// One round trip: state and content (links followed, as Ansible edits the target).
    pub fn probe(
        &self,
        ctx: &mut ModuleCtx<'_>,
    ) -> Result<Result<FileState, ModuleResult>, ModuleError> {
        let req = ProbeReq {
            follow: true,
            content_max: Some(TEXT_MAX),
            ..ProbeReq::new(self.path.as_str())
        };
        Ok(match probe(ctx, self.module, &[req])? {
            Ok(mut s) => Ok(s.remove(0)),
            Err(e) => Err(ModuleResult::failed(e)),
        })
    }

    /// The current content, None when the file does not exist.
    pub fn current(&self, st: &FileState) -> Result<Option<Vec<u8>>, String> {
        st.check_follow(&self.path)?;
        match st.kind {
            Kind::Absent => Ok(None),
            Kind::Directory => Err(format!("Path {} is a directory !", self.path)),
            Kind::File => match &st.content {
                Some(c) => Ok(Some(c.clone())),
                None if st.unreadable => Err(format!("cannot read {}", self.path)),
                None => Err(format!(
                    "{} is larger than {TEXT_MAX} bytes; refusing to edit it",
                    self.path
                )),
            },
            k => Err(format!(
                "{} is a {}, not a regular file",
                self.path,
                k.as_str()
            )),
        }
    }

    /// Write `new` if it differs from `old` (None: file absent), fix attributes otherwise. Pure.
    pub fn outcome(
        &self,
        st: &FileState,
        old: Option<&[u8]>,
        new: Vec<u8>,
        msg: String,
    ) -> Outcome {
        // A link at the path is followed (as Ansible edits the target) once `current` checked who
        // made it; anything else is written at the path as given, whatever the probe resolved.
        let dest = st
            .real_path
            .clone()
            .filter(|_| st.exists() && st.is_link)
            .unwrap_or_else(|| self.path.clone());
        if old == Some(new.as_slice()) {
            let cmds = self.attrs.fix_commands(&dest, st, false);
            let msg = if cmds.is_empty() {
                msg
            } else {
                "ownership, perms or SE linux context changed".to_string()
            };
            return Outcome::new(Plan::commands(cmds))
                .msg(msg)
                .set("backup", "");
        }
        // Ansible's check_file_attrs: an existing file whose owner or mode also changes says so.
        let msg = if st.exists() && !self.attrs.fix_commands(&dest, st, false).is_empty() {
            let sep = if msg.is_empty() { "" } else { " and " };
            format!("{msg}{sep}ownership, perms or SE linux context changed")
        } else {
            msg
        };
        let (source, stdin) = sent(&new);
        let spec = WriteSpec {
            dest: dest.clone(),
            attrs: self.attrs.clone(),
            existing: st.exists().then(|| st.clone()),
            backup: self.backup,
            mkdirs: !st.exists(),
            validate: self.validate.clone(),
            source,
            ..WriteSpec::default()
        };
        let diff = FileDiff {
            path: self.path.clone(),
            before: old.map(diff_text).unwrap_or_default(),
            after: diff_text(&new),
        };
        Outcome::new(Plan::Change {
            script: write_file_script(&spec),
            stdin,
            diff: Some(diff),
        })
        .msg(msg)
        .set("backup", "")
    }
}
