//! `blockinfile`: insert, update or remove a block of lines between marker lines. The edit is
//! the pure [`edit`] with Ansible's exact rules; reading and writing go through [`TextFile`] (one probe round trip, one atomic write when the content changed).

use regex::bytes::Regex;

use super::args::Args;
use super::plan::finish;
use super::textfile::{compile, split_lines, TextFile, TEXT_FILE_COMMON};
use super::write::FILE_COMMON;
use super::{Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};

pub struct BlockInFile;

const SPEC: Spec = Spec::new(
    "blockinfile",
    &[
        Param::str("marker").default("# {mark} ANSIBLE MANAGED BLOCK"),
        Param::str("block").aliases(&["content"]).default(""),
        Param::str("marker_begin").default("BEGIN"),
        Param::str("marker_end").default("END"),
        Param::bool("append_newline").default("false"),
        Param::bool("prepend_newline").default("false"),
    ],
)
.shared(&[TEXT_FILE_COMMON, FILE_COMMON]);

impl Module for BlockInFile {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let ba = BlockArgs::from_args(args)?;
        let tf = TextFile::from_args(args)?;
        let st = match tf.probe(ctx)? {
            Ok(st) => st,
            Err(r) => return Ok(r),
        };
        let current = match tf.current(&st) {
            Ok(c) => c,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        if current.is_none() && !tf.create {
            return Ok(ModuleResult::failed(format!(
                "Path {} does not exist !",
                tf.path
            )));
        }
        if current.is_none() && !ba.present {
            let mut r = ModuleResult::ok();
            r.msg = Some(format!("File {} not present", tf.path));
            return Ok(r);
        }
        let (new, msg) = edit(current.as_deref(), &ba);
        finish(ctx, tf.outcome(&st, current.as_deref(), new, msg))
    }
}

/// Where to put a new block.
#[derive(Debug, Clone)]
pub enum Place {
    Eof,
    Bof,
    After(Regex, bool),
    Before(Regex, bool),
}

/// Validated `blockinfile` arguments (the edit part).
#[derive(Debug, Clone)]
pub struct BlockArgs {
    pub present: bool,
    pub block: String,
    pub marker_begin_line: Vec<u8>,
    pub marker_end_line: Vec<u8>,
    pub place: Place,
    pub append_newline: bool,
    pub prepend_newline: bool,
}

impl BlockArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        args.exclusive("insertbefore", "insertafter")?;
        let present = args.choice("state")?.as_deref() != Some("absent");
        let marker = args.str("marker")?.unwrap_or_default();
        let begin = args.str("marker_begin")?.unwrap_or_default();
        let end = args.str("marker_end")?.unwrap_or_default();
        if marker.contains("{mark}") && begin == end {
            return Err(ModuleError::Args(
                "marker_begin and marker_end must differ".into(),
            ));
        }
        let block = args.str("block")?.unwrap_or_default();
        // A (?m) pattern is searched over the whole file, as Ansible does with re.MULTILINE.
        let anchor = |key: &str| -> Result<Option<(Regex, bool)>, ModuleError> {
            match args.str(key)? {
                Some(s) if s != "EOF" && s != "BOF" => {
                    let multi = s.starts_with("(?m");
                    Ok(Some((compile(key, &s)?, multi)))
                }
                _ => Ok(None),
            }
        };
        let before = args.str("insertbefore")?;
        let place = if let Some((re, multi)) = anchor("insertafter")? {
            Place::After(re, multi)
        } else if let Some((re, multi)) = anchor("insertbefore")? {
            Place::Before(re, multi)
        } else if before.as_deref() == Some("BOF") {
            Place::Bof
        } else {
            Place::Eof
        };
        Ok(Self {
            present,
            block,
            marker_begin_line: format!("{}\n", marker.replace("{mark}", &begin)).into_bytes(),
            marker_end_line: format!("{}\n", marker.replace("{mark}", &end)).into_bytes(),
            place,
            append_newline: args.bool("append_newline")?,
            prepend_newline: args.bool("prepend_newline")?,
        })
    }
}

/// The new content and Ansible's message for it. Pure. `original` is None for a missing file.
pub fn edit(original: Option<&[u8]>, a: &BlockArgs) -> (Vec<u8>, String) {
    let mut lines = split_lines(original.unwrap_or(b""));
    let marker0 = a.marker_begin_line.clone();
    let marker1 = a.marker_end_line.clone();
    let blocklines: Vec<Vec<u8>> = if a.present && !a.block.is_empty() {
        let mut block = a.block.clone().into_bytes();
        if !block.ends_with(b"\n") {
            block.push(b'\n');
        }
        let mut v = vec![marker0.clone()];
        v.extend(split_lines(&block));
        v.push(marker1.clone());
        v
    } else {
        Vec::new()
    };
    let mut n0: Option<usize> = None;
    let mut n1: Option<usize> = None;
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let mut at = match (n0, n1) {
        (Some(b), Some(e)) if b < e => {
            lines.drain(b..=e);
            b
        }
        (Some(b), Some(e)) => {
            lines.drain(e..=b);
            e
        }
        _ => insertion_point(original.unwrap_or(b""), &lines, &a.place),
    };
    if at > 0 && !lines[at - 1].ends_with(b"\n") {
        lines[at - 1].push(b'\n');
    }
    if a.prepend_newline && a.present && at != 0 && lines[at - 1] != b"\n" {
        lines.insert(at, b"\n".to_vec());
        at += 1;
    }
    let inserted = blocklines.len();
    let removing = blocklines.is_empty();
    lines.splice(at..at, blocklines);
    if a.append_newline && a.present {
        let after = at + inserted;
        if after < lines.len() && lines[after] != b"\n" {
            lines.insert(after, b"\n".to_vec());
        }
    }
    let result = lines.concat();
    let msg = match original {
        Some(o) if o == result.as_slice() => "",
        None => "File created",
        _ if removing => "Block removed",
        _ => "Block inserted",
    };
    (result, msg.to_string())
}

fn insertion_point(original: &[u8], lines: &[Vec<u8>], place: &Place) -> usize {
    match place {
        Place::Eof => lines.len(),
        Place::Bof => 0,
        Place::After(re, true) | Place::Before(re, true) => {
            let found = re.find_iter(original).last();
            match (found, place) {
                (Some(m), Place::After(..)) => {
                    original[..m.end()].iter().filter(|&&b| b == b'\n').count()
                }
                (Some(m), _) => original[..m.start()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count(),
                (None, _) => lines.len(),
            }
        }
        Place::After(re, false) | Place::Before(re, false) => {
            let mut n0 = None;
            for (i, l) in lines.iter().enumerate() {
                if re.is_match(l.strip_suffix(b"\n").unwrap_or(l)) {
                    n0 = Some(i);
                }
            }
            match (n0, place) {
                (None, _) => lines.len(),
                (Some(i), Place::After(..)) => i + 1,
                (Some(i), _) => i,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    /// (args, before (None = missing file), after, msg)
    fn check(cases: &[(serde_json::Value, Option<&str>, &str, &str)]) {
        for (a, before, after, msg) in cases {
            let ba = parse_with(&SPEC, a.clone(), BlockArgs::from_args).unwrap();
            let (got, m) = edit(before.map(str::as_bytes), &ba);
            assert_eq!(
                String::from_utf8(got.clone()).unwrap(),
                *after,
                "{a} on {before:?}"
            );
            assert_eq!(m, *msg, "msg for {a} on {before:?}");
            let (again, m2) = edit(Some(&got), &ba);
            assert_eq!(again, got, "second run changed for {a}");
            assert_eq!(m2, "");
        }
    }

    const B: &str = "# BEGIN ANSIBLE MANAGED BLOCK\n";
    const E: &str = "# END ANSIBLE MANAGED BLOCK\n";

    #[test]
    fn edits_like_ansible() {
        let blk = |s: &str| format!("{B}{s}{E}");
        check(&[
            // Appended at EOF.
            (
                json!({"path": "f", "block": "x=1\ny=2"}),
                Some("a\n"),
                &format!("a\n{}", blk("x=1\ny=2\n")),
                "Block inserted",
            ),
            // Missing final newline before the block is added.
            (
                json!({"path": "f", "block": "x"}),
                Some("a"),
                &format!("a\n{}", blk("x\n")),
                "Block inserted",
            ),
            // Replaced in place.
            (
                json!({"path": "f", "block": "new"}),
                Some(&format!("a\n{}z\n", blk("old\n"))),
                &format!("a\n{}z\n", blk("new\n")),
                "Block inserted",
            ),
            // Removed.
            (
                json!({"path": "f", "state": "absent"}),
                Some(&format!("a\n{}z\n", blk("old\n"))),
                "a\nz\n",
                "Block removed",
            ),
            // Empty block removes too.
            (
                json!({"path": "f", "block": ""}),
                Some(&format!("a\n{}", blk("old\n"))),
                "a\n",
                "Block removed",
            ),
            // BOF.
            (
                json!({"path": "f", "block": "x", "insertbefore": "BOF"}),
                Some("a\n"),
                &format!("{}a\n", blk("x\n")),
                "Block inserted",
            ),
            // After the last matching line.
            (
                json!({"path": "f", "block": "x", "insertafter": "^a"}),
                Some("a1\nb\na2\nc\n"),
                &format!("a1\nb\na2\n{}c\n", blk("x\n")),
                "Block inserted",
            ),
            // Before the last matching line.
            (
                json!({"path": "f", "block": "x", "insertbefore": "^c"}),
                Some("a\nc\n"),
                &format!("a\n{}c\n", blk("x\n")),
                "Block inserted",
            ),
            // No anchor match: EOF.
            (
                json!({"path": "f", "block": "x", "insertafter": "^zzz"}),
                Some("a\n"),
                &format!("a\n{}", blk("x\n")),
                "Block inserted",
            ),
            // Custom markers.
            (
                json!({"path": "f", "block": "x", "marker": "<!-- {mark} -->", "marker_begin": "start", "marker_end": "stop"}),
                Some(""),
                "<!-- start -->\nx\n<!-- stop -->\n",
                "Block inserted",
            ),
            // Missing file created.
            (
                json!({"path": "f", "block": "x", "create": true}),
                None,
                &blk("x\n"),
                "File created",
            ),
            // Unchanged block.
            (
                json!({"path": "f", "block": "x"}),
                Some(&blk("x\n")),
                &blk("x\n"),
                "",
            ),
            // prepend/append_newline.
            (
                json!({"path": "f", "block": "x", "insertafter": "^a", "prepend_newline": true, "append_newline": true}),
                Some("a\nb\n"),
                &format!("a\n\n{}\nb\n", blk("x\n")),
                "Block inserted",
            ),
        ]);
    }

    #[test]
    fn runs_on_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hosts");
        std::fs::write(&f, "127.0.0.1 localhost\n").unwrap();
        let a = args(json!({"path": f.to_str().unwrap(), "block": "10.0.0.1 db\n10.0.0.2 web"}));
        let mut r = LocalRemote::default();
        let res = BlockInFile
            .execute(&a, &mut ctx(&mut r, false, true, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(res.msg.as_deref(), Some("Block inserted"));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            format!("127.0.0.1 localhost\n{B}10.0.0.1 db\n10.0.0.2 web\n{E}")
        );
        let res = BlockInFile
            .execute(&a, &mut ctx(&mut r, false, true, vec![]))
            .unwrap();
        assert!(!res.changed, "{res:?}");
        let missing = dir.path().join("nope");
        let res = BlockInFile
            .execute(
                &args(json!({"path": missing.to_str().unwrap(), "block": "x"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.failed);
        assert!(res.msg.unwrap().ends_with("does not exist !"));
    }
}
